//! Sign-in, sign-out and the current user.

use crate::AppState;
use crate::auth::{
    SESSION_COOKIE, SESSION_TOKEN_PREFIX, UserAuth, new_token, session_token, token_hash,
    verify_password,
};
use crate::body;
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use panorama_core::{Invalid, User};
use serde::{Deserialize, Serialize};

/// Credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A started session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The signed-in user.
    pub user: User,
    /// The session token (also set as the `panorama_session` cookie); send
    /// it as `Authorization: Bearer` from scripts.
    pub token: String,
    /// When the session ends.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Signs in with a local user's name and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn login(State(st): State<AppState>, headers: HeaderMap, b: Body) -> ApiResult<Response> {
    body::format(&headers, &[body::Format::Json])?;
    let bytes = body::read(&headers, b, 64 * 1024).await?;
    let login: Login = serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() {
            ApiError::Invalid(Invalid::one(field_of(&e.to_string()), e.to_string()))
        } else {
            ApiError::MalformedBody {
                detail: format!("the body is not valid JSON: {e}"),
                field: None,
            }
        }
    })?;
    let refused = || ApiError::Unauthorized("wrong username or password".into());
    let Some((user, hash)) = st.store().user_with_hash(&login.username).await? else {
        // Spend the same time as a real check so names cannot be probed.
        let _ = verify_password(
            &login.password,
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000",
        );
        return Err(refused());
    };
    if !verify_password(&login.password, &hash) {
        return Err(refused());
    }
    let token = new_token(SESSION_TOKEN_PREFIX);
    let expires_at = st.clock.now() + chrono::Duration::hours(st.config.session_hours);
    st.store()
        .create_session(&token_hash(&token), &user.username, expires_at)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        st.config.session_hours * 3600,
        if st.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut resp = Json(SessionInfo {
        user,
        token,
        expires_at,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// serde names a missing or unknown field in backquotes; use it as the field.
pub(crate) fn field_of(msg: &str) -> String {
    msg.split('`').nth(1).unwrap_or("").to_string()
}

/// Ends the current session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(
    State(st): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let token =
        session_token(&parts).ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    st.store().delete_session(&token_hash(token)).await?;
    let mut resp = axum::http::StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("panorama_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(resp)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = Problem)))]
pub async fn me(UserAuth(u): UserAuth) -> Json<User> {
    Json(u)
}
