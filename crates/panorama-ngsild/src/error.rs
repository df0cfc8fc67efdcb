//! NGSI-LD problem details. [`NgsiError::parts`] is this API's sibling of
//! `ApiError::parts()` in panorama-api: the one place that gives each error
//! its HTTP status, its NGSI-LD problem type and its stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use panorama_core::Invalid;
use panorama_ingest::IngestError;
use panorama_store::StoreError;
use serde_json::json;

/// Base of the NGSI-LD problem type URIs.
pub const ERROR_BASE: &str = "https://uri.etsi.org/ngsi-ld/errors/";

/// Everything an NGSI-LD request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NgsiError {
    /// The body or a parameter is syntactically wrong.
    #[error("{detail}")]
    BadRequestData {
        /// What is wrong.
        detail: String,
        /// Which field or parameter.
        field: Option<String>,
    },
    /// The request as a whole is not valid (e.g. not JSON).
    #[error("{detail}")]
    InvalidRequest {
        /// What is wrong.
        detail: String,
        /// Which field, when known.
        field: Option<String>,
    },
    /// The entity or attribute does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The entity already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// Valid NGSI-LD that this server does not do.
    #[error("{0}")]
    OperationNotSupported(String),
    /// A JSON-LD @context could not be fetched or understood.
    #[error("{0}")]
    LdContextNotAvailable(String),
    /// None of the accepted media types can be produced.
    #[error("{0}")]
    NotAcceptable(String),
    /// The request's Content-Type is not accepted here.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No credentials or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right.
    #[error("{0}")]
    Forbidden(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too busy; retry later.
    #[error("{detail}")]
    Overloaded {
        /// Why.
        detail: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// Something broke on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl NgsiError {
    /// A `BadRequestData` about `field`.
    pub fn bad(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let detail = detail.into();
        Self::BadRequestData {
            detail: if field.is_empty() {
                detail
            } else {
                format!("{field}: {detail}")
            },
            field: Some(field).filter(|f| !f.is_empty()),
        }
    }

    /// Status, NGSI-LD problem type, title and stable code: the mapping table.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str, &'static str) {
        match self {
            Self::BadRequestData { .. } => (
                StatusCode::BAD_REQUEST,
                "BadRequestData",
                "Bad request data",
                "ngsild_bad_request_data",
            ),
            Self::InvalidRequest { .. } => (
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "Invalid request",
                "ngsild_invalid_request",
            ),
            Self::ResourceNotFound(_) => (
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "Resource not found",
                "ngsild_not_found",
            ),
            Self::AlreadyExists(_) => (
                StatusCode::CONFLICT,
                "AlreadyExists",
                "Already exists",
                "ngsild_already_exists",
            ),
            Self::OperationNotSupported(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "OperationNotSupported",
                "Operation not supported",
                "ngsild_not_supported",
            ),
            Self::LdContextNotAvailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "LdContextNotAvailable",
                "JSON-LD @context not available",
                "ngsild_context_not_available",
            ),
            Self::NotAcceptable(_) => (
                StatusCode::NOT_ACCEPTABLE,
                "NotAcceptable",
                "Not acceptable",
                "ngsild_not_acceptable",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "Unsupported media type",
                "ngsild_unsupported_media_type",
            ),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Authentication required",
                "unauthorized",
            ),
            Self::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Not allowed",
                "forbidden",
            ),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "Request entity too large",
                "payload_too_large",
            ),
            Self::Overloaded { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "InternalError",
                "Server busy",
                "overloaded",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "Internal error",
                "internal",
            ),
        }
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadRequestData { field, .. } | Self::InvalidRequest { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }

    /// The problem document (also used inside batch results).
    pub fn problem(&self) -> serde_json::Value {
        let (status, kind, title, code) = self.parts();
        let mut p = json!({
            "type": format!("{ERROR_BASE}{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
            "code": code,
        });
        if let (Some(f), Some(obj)) = (self.field(), p.as_object_mut()) {
            obj.insert("field".into(), json!(f));
        }
        p
    }
}

impl IntoResponse for NgsiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "NGSI-LD request failed");
        }
        let status = self.parts().0;
        let body = self.problem().to_string();
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

impl From<Invalid> for NgsiError {
    fn from(inv: Invalid) -> Self {
        let field = inv.0.first().map(|e| e.field.clone());
        Self::BadRequestData {
            detail: inv.to_string(),
            field,
        }
    }
}

impl From<StoreError> for NgsiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(inv) => inv.into(),
            e @ StoreError::NotFound { .. } => Self::ResourceNotFound(e.to_string()),
            StoreError::Conflict(m) => Self::AlreadyExists(m),
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

impl From<IngestError> for NgsiError {
    fn from(e: IngestError) -> Self {
        match e {
            e @ IngestError::Overloaded {
                retry_after_secs, ..
            } => Self::Overloaded {
                detail: e.to_string(),
                retry_after_secs,
            },
            e @ IngestError::TooLarge { .. } => Self::PayloadTooLarge(e.to_string()),
            IngestError::Store(s) => s.into(),
        }
    }
}

/// Result of an NGSI-LD operation.
pub type NgsiResult<T> = Result<T, NgsiError>;
