//! The OpenAPI document's frame; paths are added by the route table.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Panorama's REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Panorama API",
        description = "REST API of Panorama, the open Intelligent Operations Center. Times are RFC 3339 in UTC. \
Writes need `Authorization: Bearer <source token>`; reads need a session (POST /api/v1/auth/login). \
Errors are RFC 9457 problem+json with a stable `code` and the offending `field`. \
Write batches are all or nothing: one bad item refuses the request, listing every bad item as `[i].field`, and nothing is stored.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Writes from sources"),
        (name = "entities", description = "Things with identity"),
        (name = "observations", description = "Latest values and series"),
        (name = "indicators", description = "Indicators against plan targets"),
        (name = "reference", description = "Domains, agencies, admin units"),
        (name = "sources", description = "Data sources and freshness"),
        (name = "live", description = "Live updates"),
        (name = "rules", description = "Rules over observations, indicators and freshness; dry-runs"),
        (name = "alerts", description = "Alerts and their lifecycle; notifications and their delivery log"),
        (name = "incidents", description = "Incidents: workflow, SOP checklists, SLA, timeline, attachments"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "source_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new("panorama_session"),
            )),
        );
    }
}
