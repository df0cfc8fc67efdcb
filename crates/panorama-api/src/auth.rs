//! Who is asking: sources write with a bearer token, people read with a
//! session (cookie, or the same token as a bearer). Tokens are random,
//! shown once, and stored only as SHA-256 hashes; passwords as argon2id.

use crate::AppState;
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use panorama_core::{Role, Source, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of source (write) tokens.
pub const SOURCE_TOKEN_PREFIX: &str = "pns_";
/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "pnu_";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "panorama_session";

/// A new random token with the given prefix (256 bits of entropy).
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hashes a password to an argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("could not hash password: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_in(&parts.headers)
}

/// The bearer token of a request's headers.
pub fn bearer_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// A cookie of a request's headers.
pub fn cookie_in<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A write authorised by a source token.
#[derive(Debug, Clone)]
pub struct SourceAuth(pub Source);

impl FromRequestParts<AppState> for SourceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            return Err(ApiError::Unauthorized(
                "writes need 'Authorization: Bearer <source token>' (create one with `panorama source add`)".into(),
            ));
        };
        if !token.starts_with(SOURCE_TOKEN_PREFIX) {
            return Err(ApiError::Unauthorized(
                "the bearer token is not a source token".into(),
            ));
        }
        match state.store().source_by_token(&token_hash(token)).await? {
            Some(s) => Ok(Self(s)),
            None => Err(ApiError::Unauthorized(
                "the source token is not valid".into(),
            )),
        }
    }
}

/// A read by a signed-in user.
#[derive(Debug, Clone)]
pub struct UserAuth(pub User);

impl UserAuth {
    /// Refuses unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

/// The session token of a request (cookie first, then bearer).
pub fn session_token(parts: &Parts) -> Option<&str> {
    cookie(parts, SESSION_COOKIE)
        .or_else(|| bearer(parts).filter(|t| t.starts_with(SESSION_TOKEN_PREFIX)))
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = session_token(parts) else {
            return Err(ApiError::Unauthorized(
                "sign in first: POST /api/v1/auth/login sets the session cookie".into(),
            ));
        };
        match state
            .store()
            .session_user(&token_hash(token), state.clock.now())
            .await?
        {
            Some(u) => Ok(Self(u)),
            None => Err(ApiError::Unauthorized(
                "the session has expired or is not valid; sign in again".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = new_token(SOURCE_TOKEN_PREFIX);
        let b = new_token(SOURCE_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("pns_") && a.len() > 40);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }
}
