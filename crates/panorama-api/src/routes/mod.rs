//! The route table. Each module holds the handlers of one resource.

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod imports;
pub mod incidents;
pub mod indicators;
pub mod ingest;
pub mod meta;
pub mod query;
pub mod rules;

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::ApiDoc;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every documented route.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::health))
        .routes(routes!(meta::domains))
        .routes(routes!(meta::agencies, admin::put_agencies))
        .routes(routes!(meta::admin_units, admin::put_admin_units))
        .routes(routes!(meta::admin_unit))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(ingest::post_observations))
        .routes(routes!(ingest::post_entities, query::list_entities))
        .routes(routes!(
            ingest::post_indicator_values,
            indicators::list_values
        ))
        .routes(routes!(imports::start_import, imports::list_imports))
        .routes(routes!(imports::get_import))
        .routes(routes!(query::get_entity))
        .routes(routes!(query::entity_latest))
        .routes(routes!(query::latest))
        .routes(routes!(query::series))
        .routes(routes!(query::grouped_series))
        .routes(routes!(indicators::list_indicators, admin::put_indicators))
        .routes(routes!(indicators::get_indicator))
        .routes(routes!(indicators::indicator_values))
        .routes(routes!(indicators::indicator_history))
        .routes(routes!(admin::list_sources, admin::create_source))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(rules::list_rules, rules::create_rule))
        .routes(routes!(rules::dry_run))
        .routes(routes!(
            rules::get_rule,
            rules::put_rule,
            rules::delete_rule
        ))
        .routes(routes!(rules::dry_run_stored))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::get_alert))
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(alerts::resolve))
        .routes(routes!(alerts::comment))
        .routes(routes!(alerts::notifications))
        .routes(routes!(alerts::mark_read))
        .routes(routes!(alerts::deliveries))
        .routes(routes!(alerts::delivery))
        .routes(routes!(
            incidents::list_incidents,
            incidents::create_incident
        ))
        .routes(routes!(incidents::get_incident, incidents::patch_incident))
        .routes(routes!(incidents::set_status))
        .routes(routes!(incidents::comment))
        .routes(routes!(incidents::checklist))
        .routes(routes!(incidents::link_alerts))
        .routes(routes!(incidents::timeline))
        .routes(routes!(incidents::list_attachments, incidents::upload))
        .routes(routes!(incidents::download))
        .routes(routes!(incidents::list_sops))
        .routes(routes!(incidents::put_sop, incidents::delete_sop))
        .routes(routes!(crate::live::websocket))
        .routes(routes!(crate::live::sse))
}

/// Query-string extractor whose errors are problem+json naming the parameter.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(Self(t)),
            Err(e) => {
                let text = e.body_text();
                // serde_urlencoded says e.g. "limit: invalid digit found in string".
                let detail = text
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_string();
                if let Some(missing) = detail
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                {
                    return Err(ApiError::BadParam(
                        missing.to_string(),
                        "is required".into(),
                    ));
                }
                match detail.split_once(':') {
                    Some((p, reason)) if !p.trim().contains(' ') => Err(ApiError::BadParam(
                        p.trim().to_string(),
                        reason.trim().to_string(),
                    )),
                    _ => Err(ApiError::BadParam("query".into(), detail)),
                }
            }
        }
    }
}
