//! Indicators with their values against plan targets and a status colour.

use super::Q;
use crate::AppState;
use crate::auth::UserAuth;
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use panorama_core::{AdminLevel, Indicator, IndicatorStatus, IndicatorValue, Period};
use panorama_store::IndicatorValueQuery;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// A value with the year's target and its status colour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ValueView {
    /// The stored value (current revision).
    #[serde(flatten)]
    pub value: IndicatorValue,
    /// Plan target for the period's year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Green (on track), amber (at risk), red (off track) or unknown.
    pub status_colour: IndicatorStatus,
}

fn view(ind: &Indicator, v: IndicatorValue) -> ValueView {
    let year = Period::parse(&v.period).map(|p| p.year()).unwrap_or(0);
    ValueView {
        target: ind.targets.get(&year).copied(),
        status_colour: ind.status(v.value, year),
        value: v,
    }
}

/// An indicator with its latest value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndicatorSummary {
    /// The definition.
    #[serde(flatten)]
    pub indicator: Indicator,
    /// Latest value for the requested admin unit (by default the top-level unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<ValueView>,
    /// Values of the last periods for a sparkline, oldest first (at most 12).
    pub trend: Vec<f64>,
}

/// Filter for indicator listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IndicatorParams {
    /// Only this domain.
    pub domain: Option<String>,
    /// Values for this admin unit; by default the province (top-level unit).
    pub admin_unit: Option<String>,
}

async fn top_units(st: &AppState) -> ApiResult<HashSet<String>> {
    let units = st.store().admin_units().await?;
    let levels: HashMap<&str, AdminLevel> =
        units.iter().map(|u| (u.code.as_str(), u.level)).collect();
    Ok(units
        .iter()
        .filter(|u| u.level != AdminLevel::Country)
        .filter(|u| {
            u.parent
                .as_deref()
                .is_none_or(|p| levels.get(p) == Some(&AdminLevel::Country))
        })
        .map(|u| u.code.clone())
        .collect())
}

/// Indicators (optionally of one domain) with their latest value, target and status colour.
#[utoipa::path(get, path = "/api/v1/indicators", tag = "indicators", params(IndicatorParams),
    responses((status = 200, body = Vec<IndicatorSummary>), (status = 401, body = Problem)))]
pub async fn list_indicators(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<IndicatorParams>,
) -> ApiResult<Json<Vec<IndicatorSummary>>> {
    let indicators = st.store().indicators(p.domain.as_deref()).await?;
    let values = st
        .store()
        .indicator_values(&IndicatorValueQuery {
            domain: p.domain.clone(),
            admin_unit: p.admin_unit.clone(),
            ..Default::default()
        })
        .await?;
    let units = match &p.admin_unit {
        Some(u) => HashSet::from([u.clone()]),
        None => top_units(&st).await?,
    };
    let mut by_ind: HashMap<&str, Vec<&IndicatorValue>> = HashMap::new();
    for v in values.iter().filter(|v| units.contains(&v.admin_unit)) {
        by_ind.entry(v.indicator.as_str()).or_default().push(v);
    }
    let out = indicators
        .into_iter()
        .map(|ind| {
            let mut vals = by_ind.remove(ind.code.as_str()).unwrap_or_default();
            vals.sort_by_key(|v| Period::parse(&v.period).map(|p| p.start()).ok());
            let trend = vals.iter().rev().take(12).rev().map(|v| v.value).collect();
            let latest = vals.last().map(|v| view(&ind, (*v).clone()));
            IndicatorSummary {
                indicator: ind,
                latest,
                trend,
            }
        })
        .collect();
    Ok(Json(out))
}

/// One indicator definition.
#[utoipa::path(get, path = "/api/v1/indicators/{code}", tag = "indicators",
    params(("code" = String, Path, description = "Indicator code")),
    responses((status = 200, body = Indicator), (status = 404, body = Problem)))]
pub async fn get_indicator(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(code): Path<String>,
) -> ApiResult<Json<Indicator>> {
    Ok(Json(find(&st, &code).await?))
}

async fn find(st: &AppState, code: &str) -> ApiResult<Indicator> {
    st.store()
        .indicator(code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("indicator '{code}' does not exist")))
}

/// Filter for values.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValueParams {
    /// Only this admin unit.
    pub admin_unit: Option<String>,
    /// Only periods starting on or after this period (e.g. 2024-01).
    pub from: Option<String>,
    /// Only periods starting before this period.
    pub to: Option<String>,
}

fn period_start(name: &str, v: Option<&str>) -> ApiResult<Option<chrono::NaiveDate>> {
    v.map(|s| {
        Period::parse(s)
            .map(|p| p.start())
            .map_err(|e| ApiError::BadParam(name.into(), e))
    })
    .transpose()
}

/// Values of one indicator (current revisions) with targets and status colours.
#[utoipa::path(get, path = "/api/v1/indicators/{code}/values", tag = "indicators", params(("code" = String, Path), ValueParams),
    responses((status = 200, body = Vec<ValueView>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn indicator_values(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(code): Path<String>,
    Q(p): Q<ValueParams>,
) -> ApiResult<Json<Vec<ValueView>>> {
    let ind = find(&st, &code).await?;
    let q = IndicatorValueQuery {
        indicator: Some(code),
        domain: None,
        admin_unit: p.admin_unit,
        from: period_start("from", p.from.as_deref())?,
        to: period_start("to", p.to.as_deref())?,
    };
    let vals = st.store().indicator_values(&q).await?;
    Ok(Json(vals.into_iter().map(|v| view(&ind, v)).collect()))
}

/// Which value's history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Period label, e.g. 2024-05.
    pub period: String,
    /// Admin unit code.
    pub admin_unit: String,
}

/// Every revision of one value, oldest first.
#[utoipa::path(get, path = "/api/v1/indicators/{code}/history", tag = "indicators", params(("code" = String, Path), HistoryParams),
    responses((status = 200, body = Vec<ValueView>), (status = 404, body = Problem)))]
pub async fn indicator_history(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(code): Path<String>,
    Q(p): Q<HistoryParams>,
) -> ApiResult<Json<Vec<ValueView>>> {
    let ind = find(&st, &code).await?;
    let vals = st
        .store()
        .indicator_value_history(&code, &p.period, &p.admin_unit)
        .await?;
    Ok(Json(vals.into_iter().map(|v| view(&ind, v)).collect()))
}

/// Filter across indicators.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListValueParams {
    /// Only this indicator.
    pub indicator: Option<String>,
    /// Only indicators of this domain.
    pub domain: Option<String>,
    /// Only this admin unit.
    pub admin_unit: Option<String>,
    /// Only periods starting on or after this period.
    pub from: Option<String>,
    /// Only periods starting before this period.
    pub to: Option<String>,
}

/// Current values across indicators, by admin unit and period, with status colours.
#[utoipa::path(get, path = "/api/v1/indicator-values", tag = "indicators", params(ListValueParams),
    responses((status = 200, body = Vec<ValueView>), (status = 400, body = Problem)))]
pub async fn list_values(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<ListValueParams>,
) -> ApiResult<Json<Vec<ValueView>>> {
    let indicators: HashMap<String, Indicator> = st
        .store()
        .indicators(None)
        .await?
        .into_iter()
        .map(|i| (i.code.clone(), i))
        .collect();
    let q = IndicatorValueQuery {
        from: period_start("from", p.from.as_deref())?,
        to: period_start("to", p.to.as_deref())?,
        indicator: p.indicator,
        domain: p.domain,
        admin_unit: p.admin_unit,
    };
    let vals = st.store().indicator_values(&q).await?;
    Ok(Json(
        vals.into_iter()
            .filter_map(|v| indicators.get(&v.indicator).map(|i| view(i, v)))
            .collect(),
    ))
}
