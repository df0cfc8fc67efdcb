//! Creating sources and users: shared by the admin API and the CLI verbs.

use crate::auth::{SOURCE_TOKEN_PREFIX, hash_password, new_token, token_hash};
use crate::error::ApiError;
use panorama_core::user::check_password;
use panorama_core::{Invalid, Role, Source, SourceKind, Timestamp, User};
use panorama_store::Store;
use serde::Deserialize;

/// A source to register.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    /// Stable code, e.g. `aq-network`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it delivers (default `http_push`).
    #[serde(default)]
    pub kind: Option<SourceKind>,
    /// Owning agency code.
    #[serde(default)]
    pub owner_agency: Option<String>,
    /// Domain it mainly feeds.
    #[serde(default)]
    pub domain: Option<String>,
    /// Freshness contract in seconds (default 300).
    #[serde(default)]
    pub expected_interval_secs: Option<u64>,
    /// How Panorama connects to it; required for `mqtt` (broker, topics,
    /// credentials, mapping) and `poll` (url, interval, format, mapping).
    #[serde(default)]
    #[schema(value_type = Option<ConnectorDoc>)]
    pub connector: Option<serde_json::Value>,
}

/// The connector document of an `mqtt` or a `poll` source.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConnectorDoc {
    /// For `kind: mqtt`.
    Mqtt(panorama_connect::MqttConfig),
    /// For `kind: poll`.
    Poll(panorama_connect::PollConfig),
}

/// Registers a source and returns it with its bearer token, which is shown
/// only this once (the store keeps its hash).
pub async fn create_source(
    store: &dyn Store,
    new: NewSource,
    now: Timestamp,
) -> Result<(Source, String), ApiError> {
    let source = Source {
        id: new.id,
        name: new.name,
        kind: new.kind.unwrap_or(SourceKind::HttpPush),
        owner_agency: new.owner_agency,
        domain: new.domain,
        expected_interval_secs: new.expected_interval_secs.unwrap_or(300),
        created_at: now,
        last_seen_at: None,
        accepted: 0,
        rejected: 0,
        last_error: None,
        connector: new.connector,
    };
    let mut errs = source.validate().err().map(|e| e.0).unwrap_or_default();
    if let Err(e) = panorama_connect::config::parse(source.kind, source.connector.as_ref()) {
        errs.extend(e.0);
    }
    if !errs.is_empty() {
        return Err(Invalid(errs).into());
    }
    let token = new_token(SOURCE_TOKEN_PREFIX);
    store.create_source(&source, &token_hash(&token)).await?;
    Ok((source, token))
}

/// A user to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Name shown in the console (default: the login name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role (default `viewer`).
    #[serde(default)]
    pub role: Option<Role>,
    /// Agency code.
    #[serde(default)]
    pub agency: Option<String>,
    /// Password, at least 8 characters.
    pub password: String,
}

/// Creates a local user with an argon2id password hash.
pub async fn create_user(
    store: &dyn Store,
    new: NewUser,
    now: Timestamp,
) -> Result<User, ApiError> {
    let user = User {
        display_name: new.display_name.unwrap_or_else(|| new.username.clone()),
        username: new.username,
        role: new.role.unwrap_or(Role::Viewer),
        agency: new.agency,
        created_at: now,
    };
    let mut errs = user.validate().err().map(|e| e.0).unwrap_or_default();
    errs.extend(check_password(&new.password).err());
    if !errs.is_empty() {
        return Err(Invalid(errs).into());
    }
    let hash = hash_password(&new.password)?;
    store.create_user(&user, &hash).await?;
    Ok(user)
}
