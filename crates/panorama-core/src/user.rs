//! Users of the console and their roles.

use crate::error::{FieldError, Invalid, check_name};
use serde::{Deserialize, Serialize};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the server: users, sources, configuration.
    Admin,
    /// Leader: reads everything.
    Leader,
    /// 24/7 duty operator: alerts, incidents, cameras.
    Operator,
    /// Agency officer: submits statistics for their agency.
    Officer,
    /// Read-only.
    Viewer,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Leader => "leader",
            Self::Operator => "operator",
            Self::Officer => "officer",
            Self::Viewer => "viewer",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "admin" => Self::Admin,
            "leader" => Self::Leader,
            "operator" => Self::Operator,
            "officer" => Self::Officer,
            "viewer" => Self::Viewer,
            _ => return None,
        })
    }
}

/// A local user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Agency the user works for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// When the user was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl User {
    /// Checks the login name and display name.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        if self.username.is_empty()
            || self.username.len() > 64
            || !self
                .username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
        {
            errs.push(FieldError::new(
                "username",
                "must be 1–64 ASCII letters, digits or _ - . @",
            ));
        }
        errs.extend(check_name("display_name", &self.display_name).err());
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }
}

/// Checks a new password: long enough to resist guessing.
pub fn check_password(pw: &str) -> Result<(), FieldError> {
    if pw.chars().count() < 8 {
        return Err(FieldError::new("password", "must be at least 8 characters"));
    }
    if pw.len() > 1024 {
        return Err(FieldError::new("password", "must be at most 1024 bytes"));
    }
    Ok(())
}
