//! Query-string parsing that names the offending parameter.

use crate::error::ApiError;
use panorama_core::Timestamp;
use panorama_core::geo::BBox;
use panorama_store::EntityQuery;
use serde::Deserialize;

/// Parses an RFC 3339 time parameter.
pub fn time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            ApiError::BadParam(
                name.into(),
                format!("must be an RFC 3339 time such as 2024-05-01T00:00:00Z ({e})"),
            )
        })
}

/// A `[from, to)` window: defaults to the last 24 hours.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
    max_days: i64,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let to = to.map(|v| time("to", v)).transpose()?.unwrap_or(now);
    let from = from
        .map(|v| time("from", v))
        .transpose()?
        .unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(ApiError::BadParam(
            "from".into(),
            "must be before 'to'".into(),
        ));
    }
    if (to - from).num_days() > max_days {
        return Err(ApiError::BadParam(
            "from".into(),
            format!("the window may span at most {max_days} days"),
        ));
    }
    Ok((from, to))
}

/// Entity filter parameters shared by listings, latest values and grouped series.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntityFilter {
    /// Comma-separated entity types.
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// Domain code.
    pub domain: Option<String>,
    /// Admin unit code; includes its descendants.
    pub admin_unit: Option<String>,
    /// `west,south,east,north` in degrees.
    pub bbox: Option<String>,
    /// A GeoJSON Polygon or MultiPolygon; entities inside it.
    pub within: Option<String>,
    /// Text to find in names and ids (accents ignored).
    pub q: Option<String>,
    /// Comma-separated entity ids.
    pub ids: Option<String>,
}

/// The non-empty items of a comma-separated parameter.
pub fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A comma-separated parameter whose every item must parse; a bad item is
/// refused as "'x' is not {expected}".
pub fn parsed_list<T>(
    name: &str,
    v: &Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, ApiError> {
    list(v)
        .iter()
        .map(|s| {
            parse(s)
                .ok_or_else(|| ApiError::BadParam(name.into(), format!("'{s}' is not {expected}")))
        })
        .collect()
}

impl EntityFilter {
    /// The store query for this filter.
    pub fn query(&self, cursor: Option<String>, limit: usize) -> Result<EntityQuery, ApiError> {
        let bbox = self
            .bbox
            .as_deref()
            .map(|b| BBox::parse(b).map_err(|e| ApiError::BadParam("bbox".into(), e)))
            .transpose()?;
        let within = self
            .within
            .as_deref()
            .map(|w| {
                let g: geojson::Geometry = w.parse().map_err(|e| {
                    ApiError::BadParam("within".into(), format!("must be a GeoJSON geometry: {e}"))
                })?;
                panorama_core::geo::area_from_geojson(&g)
                    .map_err(|e| ApiError::BadParam("within".into(), e))
            })
            .transpose()?;
        if let Some(q) = &self.q
            && q.chars().count() > 200
        {
            return Err(ApiError::BadParam(
                "q".into(),
                "must be at most 200 characters".into(),
            ));
        }
        Ok(EntityQuery {
            ids: list(&self.ids),
            types: list(&self.entity_type),
            domain: self.domain.clone(),
            admin_unit: self.admin_unit.clone(),
            bbox,
            within,
            text: self.q.clone().filter(|q| !q.trim().is_empty()),
            cursor,
            limit,
        })
    }
}

/// Page size: default 100, at most 1000.
pub fn limit(v: Option<usize>) -> Result<usize, ApiError> {
    limit_up_to(v, 1000)
}

/// Page size: default 100, at most `max`.
pub fn limit_up_to(v: Option<usize>, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(100),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadParam(
            "limit".into(),
            format!("must be between 1 and {max}"),
        )),
    }
}
