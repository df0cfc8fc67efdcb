//! Agency file imports (CSV, XLSX) of indicator values and entities. An
//! import runs in the background: `POST /api/v1/imports` answers 202 with
//! the job, `GET /api/v1/imports/{id}` shows rows read and written and, when
//! done, the report listing every bad row. Jobs are kept in memory (the last
//! 200); a restart forgets them but not what they wrote.

use super::Q;
use crate::AppState;
use crate::auth::{SOURCE_TOKEN_PREFIX, SourceAuth, UserAuth};
use crate::body;
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use panorama_core::Role;
use panorama_import::{FileFormat, ImportKind, ImportOptions, JobView, JobsError};
use serde::Deserialize;

/// Largest file accepted: a million-row CSV is about 40 MB.
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

/// Content type of an XLSX workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Who imports: a source (its token) or a signed-in admin or agency officer.
#[derive(Debug, Clone)]
pub struct Importer {
    /// `source:<id>` or `user:<name>`.
    pub submitted_by: String,
    /// Admins see every job.
    pub admin: bool,
}

impl FromRequestParts<AppState> for Importer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source_token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(SOURCE_TOKEN_PREFIX));
        if source_token {
            let SourceAuth(s) = SourceAuth::from_request_parts(parts, state).await?;
            return Ok(Self {
                submitted_by: format!("source:{}", s.id),
                admin: false,
            });
        }
        let user = UserAuth::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::Unauthorized(
                    "imports need a source token ('Authorization: Bearer <source token>') or a signed-in admin or officer".into(),
                )
            })?;
        user.require(&[Role::Admin, Role::Officer])?;
        Ok(Self {
            submitted_by: format!("user:{}", user.0.username),
            admin: user.0.role == Role::Admin,
        })
    }
}

/// What to import and how.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `indicator_values` or `entities`.
    pub kind: String,
    /// Write the valid rows even when some rows are bad (default false: nothing is written unless every row is valid).
    #[serde(default)]
    pub accept_valid: bool,
    /// Check and report only; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The file's name, shown with the job (at most 255 characters, no control characters).
    #[serde(default)]
    pub filename: Option<String>,
}

/// Longest file name kept with a job.
const MAX_FILE_NAME_CHARS: usize = 255;

fn file_name(name: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(ApiError::BadParam(
            "filename".into(),
            format!("must be at most {MAX_FILE_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::BadParam(
            "filename".into(),
            "must not contain control characters".into(),
        ));
    }
    Ok(Some(name.to_string()))
}

fn file_format(headers: &HeaderMap, bytes: &[u8]) -> ApiResult<FileFormat> {
    let expected = "text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .ok_or(ApiError::UnsupportedMediaType { expected })?;
    match ct.as_str() {
        "text/csv" | "application/csv" | "text/plain" => Ok(FileFormat::Csv),
        XLSX_CONTENT_TYPE => Ok(FileFormat::Xlsx),
        "application/octet-stream" => Ok(panorama_import::sniff_format(bytes)),
        _ => Err(ApiError::UnsupportedMediaType { expected }),
    }
}

/// Starts importing a CSV or XLSX file of indicator values or entities.
/// The body is the file itself. Every row is checked before anything is
/// written; the job's report lists every bad row (spreadsheet row number,
/// column, reason). Nothing is written unless the file is valid, or
/// `accept_valid=true`. Importing the same file again writes nothing new.
/// Answers 202 with the job; follow it with `GET /api/v1/imports/{id}`.
#[utoipa::path(post, path = "/api/v1/imports", tag = "ingest", params(ImportParams),
    request_body(content = Vec<u8>, content_type = "text/csv"),
    security(("source_token" = []), ("session" = [])),
    responses((status = 202, body = JobView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 503, body = Problem)))]
pub async fn start_import(
    State(st): State<AppState>,
    who: Importer,
    Q(p): Q<ImportParams>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Response> {
    let kind = ImportKind::parse(&p.kind).ok_or_else(|| {
        ApiError::BadParam("kind".into(), "must be indicator_values or entities".into())
    })?;
    let name = file_name(p.filename)?;
    let bytes = body::read(&headers, b, MAX_IMPORT_BYTES).await?;
    let format = file_format(&headers, &bytes)?;
    if bytes.is_empty() {
        return Err(ApiError::MalformedBody {
            detail: "the body is empty: send the file itself as the body".into(),
            field: None,
        });
    }
    let mut opts = ImportOptions::new(kind, format, who.submitted_by);
    opts.accept_valid = p.accept_valid;
    opts.dry_run = p.dry_run;
    opts.file_name = name;
    let job = st
        .imports
        .start(st.ingest.clone(), st.clock.clone(), bytes, opts)
        .map_err(|e @ JobsError::Busy(_)| ApiError::Overloaded {
            detail: e.to_string(),
            retry_after_secs: 10,
        })?;
    let mut resp = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/imports/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// An import job: its progress (rows read, to write, written) and, once
/// done, its report. Visible to whoever submitted it and to admins.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "ingest",
    params(("id" = String, Path, description = "Job id")),
    security(("source_token" = []), ("session" = [])),
    responses((status = 200, body = JobView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_import(
    State(st): State<AppState>,
    who: Importer,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    match st.imports.get(&id) {
        Some(j) if who.admin || j.submitted_by == who.submitted_by => Ok(Json(j)),
        _ => Err(ApiError::NotFound(format!("no import job '{id}'"))),
    }
}

/// Recent import jobs (yours; every job for admins), newest first; reports
/// are shortened to their first errors.
#[utoipa::path(get, path = "/api/v1/imports", tag = "ingest",
    security(("source_token" = []), ("session" = [])),
    responses((status = 200, body = Vec<JobView>), (status = 401, body = Problem)))]
pub async fn list_imports(State(st): State<AppState>, who: Importer) -> Json<Vec<JobView>> {
    Json(
        st.imports
            .list((!who.admin).then_some(who.submitted_by.as_str())),
    )
}
