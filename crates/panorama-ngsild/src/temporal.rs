//! The temporal API (ETSI GS CIM 009 §5.7, 6.18-6.24): the history of an
//! entity's Properties, read from Panorama's time series (so values that
//! arrived through `/api/v1` or MQTT are here too), as instances, as
//! `temporalValues`, or aggregated per period (`aggregatedValues`).
//! Appending instances writes observations at their `observedAt`.
//! Deleting history is refused: the time-series engine is append-only.

use crate::context::{Context, DEFAULT_VOCAB};
use crate::entities::{self, Filter};
use crate::error::{NgsiError, NgsiResult};
use crate::http::{self, answer, no_content, params};
use crate::{NgsiState, model};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use panorama_core::{Observation, Timestamp, Value as PValue};
use panorama_store::{SeriesData, SeriesQuery, StoreError};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Most raw values read from one series for one request.
const RAW_LIMIT: usize = 100_000;

/// The temporal routes, to be merged into the NGSI-LD router.
pub fn routes() -> Router<NgsiState> {
    Router::new()
        .route("/temporal/entities", get(query).post(create))
        .route(
            "/temporal/entities/{id}",
            get(retrieve).delete(not_supported),
        )
        .route("/temporal/entities/{id}/attrs", post(append))
        .route(
            "/temporal/entities/{id}/attrs/{attr}",
            delete(not_supported_attr),
        )
}

const TEMPORAL_PARAMS: &[&str] = &[
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "attrs",
    "lastN",
    "options",
    "format",
    "aggrMethods",
    "aggrPeriodDuration",
];

const QUERY_PARAMS: &[&str] = &[
    "id",
    "type",
    "idPattern",
    "q",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "limit",
    "offset",
    "count",
];

/// An aggregation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// Number of values.
    TotalCount,
    /// Number of different values.
    DistinctCount,
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Least.
    Min,
    /// Greatest.
    Max,
    /// Population standard deviation.
    Stddev,
    /// Sum of squares.
    Sumsq,
}

impl Method {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "totalCount" => Self::TotalCount,
            "distinctCount" => Self::DistinctCount,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "stddev" => Self::Stddev,
            "sumsq" => Self::Sumsq,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::TotalCount => "totalCount",
            Self::DistinctCount => "distinctCount",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Stddev => "stddev",
            Self::Sumsq => "sumsq",
        }
    }
}

/// How values are shown.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Instances,
    TemporalValues,
    Aggregated {
        methods: Vec<Method>,
        period_ms: Option<i64>,
    },
}

/// A parsed temporal query.
#[derive(Debug, Clone)]
struct Temporal {
    from: Timestamp,
    to: Timestamp,
    attrs: Option<BTreeSet<String>>,
    last_n: Option<usize>,
    shape: Shape,
}

fn parse_time(p: &BTreeMap<String, String>, k: &str) -> NgsiResult<Option<Timestamp>> {
    p.get(k)
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc())
                .map_err(|e| NgsiError::bad(k, format!("'{s}' is not an RFC 3339 date-time: {e}")))
        })
        .transpose()
}

/// Parses an ISO 8601 duration of fixed length (weeks, days, hours,
/// minutes, seconds) into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let rest = s
        .strip_prefix('P')
        .ok_or_else(|| format!("'{s}' is not an ISO 8601 duration (PnDTnHnMnS)"))?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms = 0f64;
    let mut any = false;
    let mut eat = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let (_, unit) = units.iter().find(|(u, _)| *u == c).ok_or_else(|| {
                if c == 'Y' || c == 'M' {
                    format!("'{s}': years and months have no fixed length; use days")
                } else {
                    format!("'{s}': '{c}' is not a duration unit here")
                }
            })?;
            let n: f64 = num
                .parse()
                .map_err(|_| format!("'{s}' has a unit without a number"))?;
            ms += n * unit;
            any = true;
            num.clear();
        }
        if num.is_empty() {
            Ok(())
        } else {
            Err(format!("'{s}' ends with a number without a unit"))
        }
    };
    eat(date, &[('W', 604_800_000.0), ('D', 86_400_000.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return Err(format!("'{s}' has a T without a time part"));
        }
        eat(t, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)])?;
    }
    if !any {
        return Err(format!("'{s}' is an empty duration"));
    }
    Ok(ms.round() as i64)
}

fn parse_temporal(
    p: &BTreeMap<String, String>,
    ctx: &Context,
    need_timerel: bool,
) -> NgsiResult<Temporal> {
    let at = parse_time(p, "timeAt")?;
    let end = parse_time(p, "endTimeAt")?;
    let min = Timestamp::MIN_UTC;
    let max = Timestamp::MAX_UTC;
    let ms = chrono::Duration::milliseconds(1);
    let (from, to) = match p.get("timerel").map(String::as_str) {
        None if need_timerel => {
            return Err(NgsiError::bad(
                "timerel",
                "is required in a temporal query (before, after or between)",
            ));
        }
        None => {
            if at.is_some() {
                return Err(NgsiError::bad("timerel", "is required with timeAt"));
            }
            (min, max)
        }
        Some(rel) => {
            let at = at.ok_or_else(|| {
                NgsiError::bad("timeAt", format!("is required with timerel={rel}"))
            })?;
            match rel {
                "before" => (min, at),
                "after" => (at + ms, max),
                "between" => {
                    let end = end.ok_or_else(|| {
                        NgsiError::bad("endTimeAt", "is required with timerel=between")
                    })?;
                    if end <= at {
                        return Err(NgsiError::bad("endTimeAt", "must be after timeAt"));
                    }
                    (at, end)
                }
                other => {
                    return Err(NgsiError::bad(
                        "timerel",
                        format!("'{other}' is not before, after or between"),
                    ));
                }
            }
        }
    };
    match p.get("timeproperty").map(String::as_str) {
        None | Some("observedAt") => {}
        Some("createdAt") | Some("modifiedAt") | Some("deletedAt") => {
            return Err(NgsiError::OperationNotSupported(
                "timeproperty: only observedAt is kept in the time series".into(),
            ));
        }
        Some(other) => {
            return Err(NgsiError::bad(
                "timeproperty",
                format!("'{other}' is not observedAt, createdAt, modifiedAt or deletedAt"),
            ));
        }
    }
    let attrs = match p.get("attrs") {
        Some(a) => {
            let mut set = BTreeSet::new();
            for n in a.split(',') {
                model::check_term("attrs", n)?;
                set.insert(ctx.expand(n));
            }
            Some(set)
        }
        None => None,
    };
    let last_n = match p.get("lastN") {
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(NgsiError::bad(
                    "lastN",
                    format!("'{v}' is not a positive integer"),
                ));
            }
        },
        None => None,
    };
    let mut shape = Shape::Instances;
    let mut opts: Vec<&str> = Vec::new();
    if let Some(o) = p.get("options") {
        opts.extend(o.split(','));
    }
    if let Some(f) = p.get("format") {
        opts.push(f.as_str());
    }
    let mut aggregated = false;
    for o in opts {
        match o {
            "temporalValues" => shape = Shape::TemporalValues,
            "aggregatedValues" => aggregated = true,
            "normalized" | "sysAttrs" => {}
            other => {
                return Err(NgsiError::bad(
                    "options",
                    format!("'{other}' is not temporalValues or aggregatedValues"),
                ));
            }
        }
    }
    if aggregated {
        let raw = p.get("aggrMethods").ok_or_else(|| {
            NgsiError::bad("aggrMethods", "is required with options=aggregatedValues")
        })?;
        let mut methods = Vec::new();
        for m in raw.split(',') {
            let m = Method::parse(m).ok_or_else(|| {
                NgsiError::bad(
                    "aggrMethods",
                    format!("'{m}' is not totalCount, distinctCount, sum, avg, min, max, stddev or sumsq"),
                )
            })?;
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        let period_ms = match p.get("aggrPeriodDuration") {
            None => None,
            Some(d) => {
                let ms = parse_duration(d).map_err(|e| NgsiError::bad("aggrPeriodDuration", e))?;
                if ms <= 0 {
                    return Err(NgsiError::bad(
                        "aggrPeriodDuration",
                        "must be longer than zero",
                    ));
                }
                Some(ms)
            }
        };
        shape = Shape::Aggregated { methods, period_ms };
    } else if p.contains_key("aggrMethods") {
        return Err(NgsiError::bad(
            "aggrMethods",
            "is only meaningful with options=aggregatedValues",
        ));
    }
    Ok(Temporal {
        from,
        to,
        attrs,
        last_n,
        shape,
    })
}

/// Aggregates of one period: `[[value, start, end], …]` per method.
fn aggregate(
    methods: &[Method],
    points: &[(Timestamp, Value)],
    start: Timestamp,
    end: Timestamp,
    out: &mut Map<String, Value>,
) {
    let nums: Vec<f64> = points.iter().filter_map(|(_, v)| v.as_f64()).collect();
    let n = nums.len() as f64;
    let sum: f64 = nums.iter().sum();
    for m in methods {
        let v = match m {
            Method::TotalCount => json!(points.len()),
            Method::DistinctCount => {
                let d: BTreeSet<String> = points.iter().map(|(_, v)| v.to_string()).collect();
                json!(d.len())
            }
            _ if nums.is_empty() => Value::Null,
            Method::Sum => json!(sum),
            Method::Avg => json!(sum / n),
            Method::Min => json!(nums.iter().copied().fold(f64::INFINITY, f64::min)),
            Method::Max => json!(nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            Method::Stddev => {
                let mean = sum / n;
                json!((nums.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt())
            }
            Method::Sumsq => json!(nums.iter().map(|x| x * x).sum::<f64>()),
        };
        if let Some(a) = out
            .entry(m.name())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            a.push(json!([v, crate::time_text(start), crate::time_text(end)]));
        }
    }
}

fn pvalue(v: &PValue) -> Value {
    match v {
        PValue::Number(n) => json!(n),
        PValue::Text(t) => json!(t),
        PValue::Boolean(b) => json!(b),
        PValue::Json(j) => j.clone(),
    }
}

/// The temporal representation of one entity.
async fn temporal_of(
    state: &NgsiState,
    id: &str,
    ctx: &Context,
    t: &Temporal,
) -> NgsiResult<Option<Value>> {
    let Some(loaded) = entities::load(state, id).await? else {
        return Ok(None);
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    let types: Vec<String> = model::types_of(&loaded.doc)
        .iter()
        .map(|ty| ctx.compact(ty))
        .collect();
    out.insert(
        "type".into(),
        if types.len() == 1 {
            json!(types[0])
        } else {
            json!(types)
        },
    );
    let series: Vec<(String, String)> = loaded
        .entity
        .as_ref()
        .map(|e| {
            e.attributes
                .iter()
                .filter(|(_, spec)| model::is_series_type(spec.value_type))
                .map(|(name, _)| (format!("{DEFAULT_VOCAB}{name}"), name.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (iri, name) in series {
        if t.attrs.as_ref().is_some_and(|a| !a.contains(&iri)) {
            continue;
        }
        let data = state
            .store()
            .series(&SeriesQuery {
                entity: id.to_string(),
                attribute: name.clone(),
                from: t.from,
                to: t.to,
                bucket: None,
                limit: RAW_LIMIT,
            })
            .await;
        let raw = match data {
            Ok(SeriesData::Raw(r)) => r,
            Ok(SeriesData::Buckets(_)) => Vec::new(),
            Err(StoreError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if raw.len() >= RAW_LIMIT {
            return Err(NgsiError::bad(
                "timeAt",
                format!("the time range holds more than {RAW_LIMIT} values of '{name}'; narrow it"),
            ));
        }
        let mut points: Vec<(Timestamp, Value)> =
            raw.iter().map(|p| (p.time, pvalue(&p.value))).collect();
        if let Some(n) = t.last_n
            && points.len() > n
        {
            points.drain(..points.len() - n);
        }
        if points.is_empty() {
            continue;
        }
        let unit = loaded
            .entity
            .as_ref()
            .and_then(|e| e.attributes.get(&name))
            .and_then(|s| s.unit.clone());
        let key = ctx.compact(&iri);
        let v = match &t.shape {
            Shape::Instances => Value::Array(
                points
                    .iter()
                    .map(|(time, v)| {
                        let mut i = json!({"type": "Property", "value": v, "observedAt": crate::time_text(*time)});
                        if let (Some(u), Some(o)) = (&unit, i.as_object_mut()) {
                            o.insert("unitCode".into(), json!(u));
                        }
                        i
                    })
                    .collect(),
            ),
            Shape::TemporalValues => json!({
                "type": "Property",
                "values": points.iter().map(|(time, v)| json!([v, crate::time_text(*time)])).collect::<Vec<_>>(),
            }),
            Shape::Aggregated { methods, period_ms } => {
                let mut agg = Map::new();
                agg.insert("type".into(), json!("Property"));
                let first = points.first().map(|p| p.0).unwrap_or(t.from);
                let last = points.last().map(|p| p.0).unwrap_or(t.from);
                let start = if t.from == Timestamp::MIN_UTC { first } else { t.from };
                match period_ms {
                    None => {
                        let end = if t.to == Timestamp::MAX_UTC {
                            last + chrono::Duration::milliseconds(1)
                        } else {
                            t.to
                        };
                        aggregate(methods, &points, start, end, &mut agg);
                    }
                    Some(p) => {
                        let mut groups: BTreeMap<i64, Vec<(Timestamp, Value)>> = BTreeMap::new();
                        for (time, v) in &points {
                            let k = (*time - start).num_milliseconds().div_euclid(*p);
                            groups.entry(k).or_default().push((*time, v.clone()));
                        }
                        for (k, g) in groups {
                            let s = start + chrono::Duration::milliseconds(k * p);
                            let e = s + chrono::Duration::milliseconds(*p);
                            aggregate(methods, &g, s, e, &mut agg);
                        }
                    }
                }
                Value::Object(agg)
            }
        };
        out.insert(key, v);
    }
    Ok(Some(Value::Object(out)))
}

async fn retrieve(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = http::accept_json(&headers)?;
    s.read(&headers).await?;
    model::check_id("id", &id)?;
    let p = params(rq.as_deref(), TEMPORAL_PARAMS)?;
    let ctx = http::request_context(&s, &headers).await?;
    let t = parse_temporal(&p, &ctx, false)?;
    let v = temporal_of(&s, &id, &ctx, &t)
        .await?
        .ok_or_else(|| NgsiError::ResourceNotFound(format!("no entity '{id}'")))?;
    Ok(answer(StatusCode::OK, media, &ctx, v))
}

async fn query(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = http::accept_json(&headers)?;
    s.read(&headers).await?;
    let all: Vec<&str> = TEMPORAL_PARAMS
        .iter()
        .chain(QUERY_PARAMS)
        .copied()
        .collect();
    let p = params(rq.as_deref(), &all)?;
    let ctx = http::request_context(&s, &headers).await?;
    let t = parse_temporal(&p, &ctx, true)?;
    let mut fp = p.clone();
    fp.remove("attrs");
    let f = Filter::parse(&fp, &ctx)?;
    if !f.is_narrowing() && t.attrs.is_none() {
        return Err(NgsiError::bad(
            "type",
            "a temporal query needs at least one of type, id, idPattern, attrs, q or a geo-query",
        ));
    }
    let num = |k: &str, d: usize| -> NgsiResult<usize> {
        p.get(k).map_or(Ok(d), |v| {
            v.parse::<usize>()
                .map_err(|_| NgsiError::bad(k, format!("'{v}' is not a non-negative integer")))
        })
    };
    let limit = num("limit", 20)?;
    let offset = num("offset", 0)?;
    if limit > s.config.max_limit {
        return Err(NgsiError::bad(
            "limit",
            format!("must be at most {}", s.config.max_limit),
        ));
    }
    let count = match p.get("count").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(NgsiError::bad(
                "count",
                format!("'{v}' is not true or false"),
            ));
        }
    };
    let docs = entities::load_all(&s).await?;
    let ids: Vec<String> = docs
        .iter()
        .filter(|d| f.matches(d, &ctx))
        .filter(|d| {
            t.attrs
                .as_ref()
                .is_none_or(|a| a.iter().any(|n| d.contains_key(n)))
        })
        .filter_map(|d| d.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        if let Some(v) = temporal_of(&s, id, &ctx, &t).await? {
            out.push(v);
        }
    }
    let mut resp = answer(StatusCode::OK, media, &ctx, Value::Array(out));
    if count && let Ok(v) = HeaderValue::from_str(&ids.len().to_string()) {
        resp.headers_mut().insert("NGSILD-Results-Count", v);
    }
    Ok(resp)
}

/// Observations of the instances in a temporal fragment.
fn observations(id: &str, body: &Value, ctx: &Context) -> NgsiResult<Vec<Observation>> {
    let o = body
        .as_object()
        .ok_or_else(|| NgsiError::bad("", "a temporal fragment must be a JSON object"))?;
    let mut out = Vec::new();
    for (k, v) in o {
        if matches!(k.as_str(), "id" | "type" | "@context") {
            continue;
        }
        model::check_term(k, k)?;
        let name = model::short_name(&ctx.expand(k))
            .ok_or_else(|| NgsiError::bad(k.as_str(), "is not a valid attribute name"))?;
        let instances: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for (i, inst) in instances.iter().enumerate() {
            let f = |m: &str| format!("{k}[{i}].{m}");
            match inst.get("type").and_then(Value::as_str) {
                None | Some("Property") => {}
                Some(other) => {
                    return Err(NgsiError::OperationNotSupported(format!(
                        "{}: the history of a {other} is not kept; only Property values are",
                        f("type")
                    )));
                }
            }
            let time = inst
                .get("observedAt")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    NgsiError::bad(f("observedAt"), "is required for a temporal instance")
                })?;
            let time = chrono::DateTime::parse_from_rfc3339(time)
                .map(|t| t.to_utc())
                .map_err(|e| {
                    NgsiError::bad(
                        f("observedAt"),
                        format!("is not an RFC 3339 date-time: {e}"),
                    )
                })?;
            let value = match inst.get("value") {
                Some(Value::Number(n)) => PValue::Number(
                    n.as_f64()
                        .ok_or_else(|| NgsiError::bad(f("value"), "is not a finite number"))?,
                ),
                Some(Value::String(s)) => PValue::Text(s.clone()),
                Some(Value::Bool(b)) => PValue::Boolean(*b),
                Some(j @ (Value::Object(_) | Value::Array(_))) => PValue::Json(j.clone()),
                Some(Value::Null) | None => {
                    return Err(NgsiError::bad(f("value"), "is required"));
                }
            };
            out.push(Observation {
                entity: id.to_string(),
                attribute: name.clone(),
                time,
                value,
            });
        }
    }
    if out.is_empty() {
        return Err(NgsiError::bad(
            "",
            "the fragment holds no attribute instance",
        ));
    }
    Ok(out)
}

/// Writes the instances of `body` as observations of the existing entity `id`.
async fn write(s: &NgsiState, headers: &HeaderMap, id: &str, bytes: &[u8]) -> NgsiResult<()> {
    let w = s.write(headers).await?;
    let b = http::body(headers, bytes, false)?;
    let mut json = b.json.clone();
    let ctx = http::take_context(s, &b, &mut json).await?;
    let mut obs = observations(id, &json, &ctx)?;
    let mut entity = s.store().entity(id).await?.ok_or_else(|| {
        NgsiError::ResourceNotFound(format!(
            "no entity '{id}'; create it through /ngsi-ld/v1/entities first"
        ))
    })?;
    // Attributes the entity does not have yet are added to it first (their
    // newest instance, through the entity API); the rest is history.
    let mut added = Map::new();
    let mut skip = Vec::new();
    if let Some(o) = json.as_object() {
        for (k, v) in o {
            if matches!(k.as_str(), "id" | "type" | "@context") {
                continue;
            }
            let Some(name) = model::short_name(&ctx.expand(k)) else {
                continue;
            };
            if entity.attributes.contains_key(&name) {
                continue;
            }
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            let Some(newest) = items.into_iter().max_by_key(|i| {
                i.get("observedAt")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }) else {
                continue;
            };
            if let Some(at) = newest
                .get("observedAt")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                skip.push((name, at.to_utc()));
            }
            added.insert(k.clone(), newest.clone());
        }
    }
    if !added.is_empty() {
        if let Some(c) = b.json.get("@context") {
            added.insert("@context".into(), c.clone());
        }
        let mut req = axum::http::Request::builder()
            .method("POST")
            .uri(format!("/entities/{id}/attrs"));
        for (k, v) in headers {
            if k != axum::http::header::CONTENT_LENGTH {
                req = req.header(k, v);
            }
        }
        let req = req
            .body(axum::body::Body::from(Value::Object(added).to_string()))
            .map_err(|e| NgsiError::Internal(format!("building the append request: {e}")))?;
        let resp = tower::ServiceExt::oneshot(entities::routes().with_state(s.clone()), req)
            .await
            .map_err(|e| NgsiError::Internal(format!("adding the attributes: {e}")))?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(NgsiError::bad(
                "",
                format!(
                    "the new attributes could not be added to '{id}' (status {})",
                    resp.status()
                ),
            ));
        }
        obs.retain(|o| !skip.iter().any(|(n, t)| *n == o.attribute && *t == o.time));
        entity = s
            .store()
            .entity(id)
            .await?
            .ok_or_else(|| NgsiError::ResourceNotFound(format!("entity '{id}' is gone")))?;
    }
    for o in &obs {
        if !entity.attributes.contains_key(&o.attribute) {
            return Err(NgsiError::bad(
                o.attribute.as_str(),
                format!(
                    "is not an attribute of '{id}'; add it through /ngsi-ld/v1/entities/{id}/attrs first"
                ),
            ));
        }
    }
    s.ingest.observations(&w.source, obs).await?;
    Ok(())
}

/// Creates (201) or extends (204) an entity from its temporal
/// representation. A new entity is created through the entity API with
/// the newest instance of each attribute; the older instances become its
/// history.
async fn create(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let id = b
        .json
        .get("id")
        .ok_or_else(|| NgsiError::bad("id", "is required"))?
        .as_str()
        .ok_or_else(|| NgsiError::bad("id", "must be a string"))?
        .to_string();
    model::check_id("id", &id)?;
    if entities::load(&s, &id).await?.is_some() {
        write(&s, &headers, &id, &bytes).await?;
        return Ok(no_content());
    }
    let o = b
        .json
        .as_object()
        .ok_or_else(|| NgsiError::bad("", "an entity must be a JSON object"))?;
    let mut newest = Map::new();
    let mut older = Map::new();
    for (k, v) in o {
        let Value::Array(items) = v else {
            newest.insert(k.clone(), v.clone());
            continue;
        };
        if matches!(k.as_str(), "@context" | "type") {
            newest.insert(k.clone(), v.clone());
            continue;
        }
        let at = |i: &Value| {
            i.get("observedAt")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        };
        let Some(pick) = (0..items.len()).max_by_key(|i| at(&items[*i])) else {
            return Err(NgsiError::bad(k.as_str(), "has no instance"));
        };
        newest.insert(k.clone(), items[pick].clone());
        let rest: Vec<Value> = items
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pick)
            .map(|(_, v)| v.clone())
            .collect();
        if !rest.is_empty() {
            older.insert(k.clone(), Value::Array(rest));
        }
    }
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/entities");
    for (k, v) in &headers {
        if k != axum::http::header::CONTENT_LENGTH {
            req = req.header(k, v);
        }
    }
    let req = req
        .body(axum::body::Body::from(Value::Object(newest).to_string()))
        .map_err(|e| NgsiError::Internal(format!("building the entity request: {e}")))?;
    let resp = tower::ServiceExt::oneshot(entities::routes().with_state(s.clone()), req)
        .await
        .map_err(|e| NgsiError::Internal(format!("creating the entity: {e}")))?;
    if resp.status() != StatusCode::CREATED {
        return Ok(resp);
    }
    if older.iter().any(|(k, _)| k != "@context") {
        if let Some(c) = o.get("@context") {
            older.insert("@context".into(), c.clone());
        }
        write(
            &s,
            &headers,
            &id,
            Value::Object(older).to_string().as_bytes(),
        )
        .await?;
    }
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/ngsi-ld/v1/temporal/entities/{id}")) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn append(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> NgsiResult<Response> {
    model::check_id("id", &id)?;
    write(&s, &headers, &id, &bytes).await?;
    Ok(no_content())
}

async fn not_supported(State(s): State<NgsiState>, headers: HeaderMap) -> NgsiResult<Response> {
    s.write(&headers).await?;
    Err(NgsiError::OperationNotSupported(
        "deleting temporal history is not supported: the time series are append-only".into(),
    ))
}

async fn not_supported_attr(
    State(s): State<NgsiState>,
    headers: HeaderMap,
) -> NgsiResult<Response> {
    not_supported(State(s), headers).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_duration;

    #[test]
    fn fixed_durations_parse_to_milliseconds() {
        assert_eq!(parse_duration("PT1H").unwrap(), 3_600_000);
        assert_eq!(parse_duration("P1DT2H30M").unwrap(), 95_400_000);
        assert_eq!(parse_duration("P2W").unwrap(), 1_209_600_000);
        assert_eq!(parse_duration("PT0.5S").unwrap(), 500);
        assert_eq!(parse_duration("PT90M").unwrap(), 5_400_000);
    }

    #[test]
    fn other_durations_are_refused_with_the_reason() {
        assert!(parse_duration("P1M").unwrap_err().contains("months"));
        assert!(parse_duration("P1Y").unwrap_err().contains("years"));
        assert!(
            parse_duration("1H")
                .unwrap_err()
                .contains("not an ISO 8601")
        );
        assert!(parse_duration("P").unwrap_err().contains("empty"));
        assert!(parse_duration("PT").unwrap_err().contains("without a time"));
        assert!(
            parse_duration("PT5")
                .unwrap_err()
                .contains("without a unit")
        );
        assert!(
            parse_duration("PTH")
                .unwrap_err()
                .contains("without a number")
        );
        assert!(
            parse_duration("P1H")
                .unwrap_err()
                .contains("not a duration unit")
        );
    }
}
