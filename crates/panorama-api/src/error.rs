//! One error type for the HTTP layer, rendered as RFC 9457 problem+json with
//! a stable `code`. The table in [`ApiError::parts`] is the only place that
//! decides which error gets which status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use panorama_core::{FieldError, Invalid};
use panorama_ingest::IngestError;
use panorama_store::StoreError;
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not well-formed JSON / NDJSON.
    #[error("{detail}")]
    MalformedBody {
        /// What the parser said, with line and column.
        detail: String,
        /// Where, when known (`[3]`, `line 4`).
        field: Option<String>,
    },
    /// Well-formed but invalid input.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A query parameter is invalid.
    #[error("query parameter '{0}' {1}")]
    BadParam(String, String),
    /// The content type is not one this route accepts.
    #[error("Content-Type must be {expected}")]
    UnsupportedMediaType {
        /// What the route accepts.
        expected: &'static str,
    },
    /// The body is larger than allowed.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown resource.
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// Too busy; retry later.
    #[error("{detail}")]
    Overloaded {
        /// Why.
        detail: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// A request carrying more items than allowed at once.
    #[error("{0}")]
    TooManyItems(String),
    /// Something broke on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_input`.
    pub code: String,
    /// What went wrong in this request.
    pub detail: String,
    /// The first offending field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// Status, stable code and title: the single mapping table.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MalformedBody { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "Malformed request body",
            ),
            Self::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "Invalid input",
            ),
            Self::BadParam(..) => (
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "Invalid query parameter",
            ),
            Self::UnsupportedMediaType { .. } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Overloaded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Server busy")
            }
            Self::TooManyItems(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_items",
                "Too many items",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let (field, errors) = match self {
            Self::Invalid(inv) => (inv.0.first().map(|e| e.field.clone()), inv.0.clone()),
            Self::BadParam(p, reason) => (
                Some(p.clone()),
                vec![FieldError::new(p.clone(), reason.clone())],
            ),
            Self::MalformedBody { field, .. } => (field.clone(), Vec::new()),
            _ => (None, Vec::new()),
        };
        Problem {
            kind: format!(
                "https://panorama-ioc.github.io/problems/{}",
                code.replace('_', "-")
            ),
            title: title.into(),
            status: status.as_u16(),
            code: code.into(),
            detail: self.to_string(),
            field,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::Overloaded {
            retry_after_secs, ..
        } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Self::Unauthorized(_) = self {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"panorama\""),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(inv) => Self::Invalid(inv),
            e @ StoreError::NotFound { .. } => Self::NotFound(e.to_string()),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Overloaded { retry_after_secs } => Self::Overloaded {
                detail: "the store is busy".into(),
                retry_after_secs,
            },
            e @ (StoreError::TooNew { .. } | StoreError::Locked(_) | StoreError::Backend(_)) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            e @ IngestError::Overloaded {
                retry_after_secs, ..
            } => Self::Overloaded {
                detail: e.to_string(),
                retry_after_secs,
            },
            e @ IngestError::TooLarge { .. } => Self::TooManyItems(e.to_string()),
            IngestError::Store(s) => s.into(),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
