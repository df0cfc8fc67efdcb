//! Entities: create, retrieve, query, replace, merge, delete; attributes
//! (append, update, partial update, replace, delete); batch operations;
//! `/types` and `/attributes`.

use crate::context::Context;
use crate::error::{NgsiError, NgsiResult};
use crate::http::{self, Body, Media, Options, accept, answer, no_content, options, params};
use crate::model::{self, Doc, Mode, Render};
use crate::{NgsiState, Writer, geoq, q};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use panorama_core::{Entity, Timestamp};
use panorama_store::{EntityQuery, LdDocument};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The value that deletes an attribute in a merge.
const NULL_URI: &str = "urn:ngsi-ld:null";

/// The entity routes, to be merged into the NGSI-LD router.
pub fn routes() -> Router<NgsiState> {
    Router::new()
        .route(
            "/entities",
            post(create)
                .get(query)
                .delete(purge)
                .put(no_entity_id)
                .patch(no_entity_id),
        )
        .route("/entityOperations/query", post(batch_query))
        .route(
            "/entities/{id}",
            get(retrieve).delete(remove).patch(merge).put(replace),
        )
        .route("/entities/{id}/attrs", post(append).patch(update_attrs))
        .route(
            "/entities/{id}/attrs/{attr}",
            patch(partial_update).put(replace_attr).delete(delete_attr),
        )
        .route("/entityOperations/create", post(batch_create))
        .route("/entityOperations/upsert", post(batch_upsert))
        .route("/entityOperations/update", post(batch_update))
        .route("/entityOperations/merge", post(batch_merge))
        .route("/entityOperations/delete", post(batch_delete))
        .route("/types", get(types))
        .route("/types/{type}", get(type_info))
        .route("/attributes", get(attributes))
        .route("/attributes/{attr}", get(attribute_info))
}

/// An entity as NGSI-LD sees it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Stored form, with `createdAt` / `modifiedAt`.
    pub doc: Doc,
    /// The catalogue entity, when there is one.
    pub entity: Option<Entity>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The NGSI-LD view of one entity, or `None` when it does not exist (or
/// was deleted through NGSI-LD).
pub async fn load(state: &NgsiState, id: &str) -> NgsiResult<Option<Loaded>> {
    let ld = state.ld()?;
    let stored = ld.ld_document(id).await?;
    let entity = state.store().entity(id).await?;
    let latest = match &entity {
        Some(_) => state.store().latest(&[id.to_string()]).await?,
        None => Vec::new(),
    };
    Ok(match stored {
        Some(LdDocument { doc: None, .. }) => None,
        Some(LdDocument {
            doc: Some(Value::Object(mut doc)),
            created_at,
            modified_at,
            ..
        }) => {
            model::overlay_latest(&mut doc, &latest, modified_at);
            doc.insert("createdAt".into(), json!(crate::time_text(created_at)));
            doc.insert("modifiedAt".into(), json!(crate::time_text(modified_at)));
            Some(Loaded {
                doc,
                entity,
                created_at,
            })
        }
        Some(_) => {
            return Err(NgsiError::Internal(format!(
                "the NGSI-LD document of '{id}' is not an object"
            )));
        }
        None => entity.map(|e| Loaded {
            doc: model::from_panorama(&e, &latest),
            created_at: e.updated_at.unwrap_or_else(|| state.clock.now()),
            entity: Some(e),
        }),
    })
}

/// Every entity NGSI-LD sees, in id order.
pub async fn load_all(state: &NgsiState) -> NgsiResult<Vec<Doc>> {
    let ld = state.ld()?;
    let docs = ld.ld_documents().await?;
    let mut entities = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .store()
            .query_entities(&EntityQuery {
                cursor: cursor.clone(),
                limit: 1000,
                ..EntityQuery::default()
            })
            .await?;
        entities.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<String> = entities.iter().map(|e| e.id.clone()).collect();
    let mut latest: BTreeMap<String, Vec<panorama_store::LatestValue>> = BTreeMap::new();
    for chunk in ids.chunks(1000) {
        for l in state.store().latest(chunk).await? {
            latest.entry(l.entity.clone()).or_default().push(l);
        }
    }
    let mut out: BTreeMap<String, Doc> = BTreeMap::new();
    let mut hidden = BTreeSet::new();
    for d in docs {
        match d.doc {
            Some(Value::Object(mut doc)) => {
                if let Some(l) = latest.get(&d.id) {
                    model::overlay_latest(&mut doc, l, d.modified_at);
                }
                doc.insert("createdAt".into(), json!(crate::time_text(d.created_at)));
                doc.insert("modifiedAt".into(), json!(crate::time_text(d.modified_at)));
                out.insert(d.id, doc);
            }
            _ => {
                hidden.insert(d.id);
            }
        }
    }
    for e in entities {
        if hidden.contains(&e.id) || out.contains_key(&e.id) {
            continue;
        }
        let l = latest.get(&e.id).map(Vec::as_slice).unwrap_or_default();
        out.insert(e.id.clone(), model::from_panorama(&e, l));
    }
    Ok(out.into_values().collect())
}

/// A write waiting to be committed.
#[derive(Debug)]
struct Pending {
    doc: Doc,
    created_at: Timestamp,
    touched: BTreeSet<String>,
    existing: Option<Entity>,
}

impl Pending {
    fn from_loaded(l: Loaded, doc: Doc, touched: BTreeSet<String>) -> Self {
        Self {
            doc,
            created_at: l.created_at,
            touched,
            existing: l.entity,
        }
    }
}

/// Commits writes: catalogue entities first, then the NGSI-LD documents,
/// then the observations (durable before the answer, published on the bus).
async fn commit(state: &NgsiState, w: &Writer, pending: Vec<Pending>) -> NgsiResult<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let now = state.clock.now();
    let domain = w.domain.as_deref().unwrap_or(&state.config.default_domain);
    let mut entities = Vec::new();
    let mut observations = Vec::new();
    let mut docs = Vec::new();
    for mut p in pending {
        p.doc.remove("createdAt");
        p.doc.remove("modifiedAt");
        let proj = model::to_panorama(&p.doc, p.existing.as_ref(), domain, &p.touched, now)?;
        entities.push(proj.entity);
        observations.extend(proj.observations);
        docs.push(LdDocument {
            id: p
                .doc
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            doc: Some(Value::Object(p.doc)),
            created_at: p.created_at,
            modified_at: now,
        });
    }
    state.ingest.entities(&w.source, entities).await?;
    state.ld()?.put_ld_documents(&docs).await?;
    state.ingest.observations(&w.source, observations).await?;
    Ok(())
}

fn stamp_all(doc: &mut Doc, old: Option<&Doc>, now: Timestamp) {
    let names: Vec<String> = model::attribute_names(doc).cloned().collect();
    for n in names {
        let created = old
            .and_then(|o| o.get(&n))
            .and_then(|v| v.get(0))
            .and_then(|i| i.get("createdAt"))
            .cloned();
        if let Some(Value::Array(a)) = doc.get_mut(&n) {
            model::stamp(a, created.as_ref(), now);
        }
    }
}

fn entity_location(id: &str) -> String {
    let mut out = String::from("/ngsi-ld/v1/entities/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// PUT or PATCH on `/entities` (or `/entities/`): the entity id is missing.
async fn no_entity_id() -> NgsiError {
    NgsiError::bad("id", "is required in the path: /entities/{id}")
}

async fn one_body(
    state: &NgsiState,
    headers: &HeaderMap,
    bytes: &[u8],
    merge_patch: bool,
) -> NgsiResult<(Value, Context)> {
    let b = http::body(headers, bytes, merge_patch)?;
    if !b.json.is_object() {
        return Err(NgsiError::InvalidRequest {
            detail: "the body must be a JSON object".into(),
            field: None,
        });
    }
    let mut json = b.json.clone();
    let ctx = http::take_context(state, &b, &mut json).await?;
    Ok((json, ctx))
}

async fn create(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let w = s.write(&headers).await?;
    let (json, ctx) = one_body(&s, &headers, &bytes, false).await?;
    let now = s.clock.now();
    let mut doc = model::parse_entity(&json, &ctx, now)?;
    let id = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let existing = s.store().entity(&id).await?;
    if load(&s, &id).await?.is_some() {
        return Err(NgsiError::AlreadyExists(format!(
            "entity '{id}' already exists"
        )));
    }
    stamp_all(&mut doc, None, now);
    let touched = model::attribute_names(&doc).cloned().collect();
    commit(
        &s,
        &w,
        vec![Pending {
            doc,
            created_at: now,
            touched,
            existing,
        }],
    )
    .await?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&entity_location(&id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn name_set(
    p: &BTreeMap<String, String>,
    key: &str,
    ctx: &Context,
    keep_core: bool,
) -> NgsiResult<Option<BTreeSet<String>>> {
    let Some(raw) = p.get(key) else {
        return Ok(None);
    };
    let names: Vec<String> = if matches!(key, "pick" | "omit") {
        projection_names(key, raw)?
    } else {
        raw.split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut out = BTreeSet::new();
    for n in names.iter().map(String::as_str) {
        model::check_term(key, n)?;
        if keep_core && (n == "id" || n == "type") {
            out.insert(n.to_string());
        } else {
            out.insert(ctx.expand(n));
        }
    }
    Ok(Some(out))
}

/// The top-level names of a `pick` / `omit` projection (`a,b{c,d}`):
/// names separated by single commas, each optionally followed by a braced,
/// non-empty projection of the linked entity. Anything else is refused.
fn projection_names(key: &str, raw: &str) -> NgsiResult<Vec<String>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut top = Vec::new();
    let mut depth = 0usize;
    let mut name = String::new();
    // What the previous token was: start of a list, a name, or a closing brace.
    #[derive(PartialEq)]
    enum Prev {
        Open,
        Name,
        Close,
    }
    let mut prev = Prev::Open;
    let bad = |why: &str| NgsiError::bad(key, format!("'{raw}' {why}"));
    for c in raw.chars() {
        match c {
            ',' | '{' | '}' => {
                if !name.is_empty() {
                    model::check_term(key, &name)?;
                    if depth == 0 {
                        top.push(std::mem::take(&mut name));
                    } else {
                        name.clear();
                    }
                    prev = Prev::Name;
                }
                match (c, &prev) {
                    (',', Prev::Name | Prev::Close) => prev = Prev::Open,
                    (',', Prev::Open) => {
                        return Err(bad(
                            "has an empty name (two separators in a row or a leading one)",
                        ));
                    }
                    ('{', Prev::Name) => {
                        depth += 1;
                        prev = Prev::Open;
                    }
                    ('{', _) => return Err(bad("opens a brace that follows no attribute name")),
                    ('}', Prev::Name | Prev::Close) if depth > 0 => {
                        depth -= 1;
                        prev = Prev::Close;
                    }
                    ('}', _) if depth == 0 => return Err(bad("closes a brace it never opened")),
                    _ => return Err(bad("has an empty name inside braces")),
                }
            }
            _ => {
                if prev == Prev::Close {
                    return Err(bad("needs a comma after a closing brace"));
                }
                name.push(c);
            }
        }
    }
    if depth > 0 {
        return Err(bad("leaves a brace unclosed"));
    }
    if name.is_empty() {
        if prev == Prev::Open {
            return Err(bad("ends without a name"));
        }
    } else {
        top.push(name);
    }
    Ok(top)
}

fn render_opts(p: &BTreeMap<String, String>, ctx: &Context, o: Options) -> NgsiResult<Render> {
    let pick = name_set(p, "pick", ctx, true)?;
    let omit = name_set(p, "omit", ctx, true)?;
    if pick.is_some() && omit.is_some() {
        return Err(NgsiError::bad("pick", "cannot be given together with omit"));
    }
    if pick.is_some() && p.contains_key("attrs") {
        return Err(NgsiError::bad(
            "pick",
            "cannot be given together with attrs",
        ));
    }
    Ok(Render {
        key_values: o.key_values,
        sys_attrs: o.sys_attrs,
        attrs: name_set(p, "attrs", ctx, false)?,
        pick,
        omit,
        lang: p
            .get("lang")
            .filter(|l| !l.is_empty() && *l != "*")
            .cloned(),
    })
}

const RETRIEVE_PARAMS: &[&str] = &[
    "attrs",
    "pick",
    "omit",
    "options",
    "format",
    "type",
    "lang",
    "local",
    "geometryProperty",
    "datasetId",
    "join",
    "joinLevel",
    "containedBy",
];

async fn retrieve(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    let p = params(rq.as_deref(), RETRIEVE_PARAMS)?;
    model::check_id("id", &id)?;
    let ctx = http::request_context(&s, &headers).await?;
    let o = options(&p)?;
    let r = render_opts(&p, &ctx, o)?;
    let Some(l) = load(&s, &id).await? else {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' does not exist"
        )));
    };
    if let Some(t) = p.get("type") {
        let wanted: BTreeSet<String> = t.split(',').map(|t| ctx.expand(t)).collect();
        if !model::types_of(&l.doc).iter().any(|t| wanted.contains(t)) {
            return Err(NgsiError::ResourceNotFound(format!(
                "entity '{id}' is not of type '{t}'"
            )));
        }
    }
    if let Some(a) = &r.attrs
        && !a.iter().any(|n| l.doc.contains_key(n))
    {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' has none of the attributes asked for"
        )));
    }
    let mut body = model::render(&l.doc, &ctx, &r);
    if (p.contains_key("pick") || p.contains_key("omit"))
        && body.as_object().is_some_and(|o| o.is_empty())
    {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' has none of the members pick/omit leave"
        )));
    }
    match parse_join(&p)? {
        Some((Join::Inline, level)) => inline(&s, &ctx, &r, &l.doc, &mut body, level).await?,
        Some((Join::Flat, level)) => {
            let mut all = vec![body];
            all.extend(flat(&s, &ctx, &r, &[&l.doc], level).await?);
            body = Value::Array(all);
        }
        None => {}
    }
    if media == Media::GeoJson {
        body = http::geojson(
            body,
            p.get("geometryProperty").map_or("location", String::as_str),
        );
    }
    Ok(answer(StatusCode::OK, media, &ctx, body))
}

const QUERY_PARAMS: &[&str] = &[
    "id",
    "type",
    "idPattern",
    "attrs",
    "pick",
    "omit",
    "q",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "limit",
    "offset",
    "orderBy",
    "count",
    "options",
    "format",
    "lang",
    "local",
    "scopeQ",
    "csf",
    "geometryProperty",
    "datasetId",
    "join",
    "joinLevel",
    "containedBy",
];

/// Parses an entity type selection (`A,B` or `A|B` either, `A;B` both,
/// parentheses group) into disjunctive form: a list of type sets, any of
/// which an entity must have in full.
fn parse_type_selection(raw: &str) -> NgsiResult<Vec<Vec<String>>> {
    fn or(t: &[char], i: &mut usize) -> NgsiResult<Vec<Vec<String>>> {
        let mut out = and(t, i)?;
        while *i < t.len() && matches!(t[*i], ',' | '|') {
            *i += 1;
            out.extend(and(t, i)?);
        }
        Ok(out)
    }
    fn and(t: &[char], i: &mut usize) -> NgsiResult<Vec<Vec<String>>> {
        let mut out = atom(t, i)?;
        while *i < t.len() && t[*i] == ';' {
            *i += 1;
            let rhs = atom(t, i)?;
            out = out
                .iter()
                .flat_map(|l| {
                    rhs.iter().map(move |r| {
                        let mut both = l.clone();
                        both.extend(r.iter().cloned());
                        both
                    })
                })
                .collect();
        }
        Ok(out)
    }
    fn atom(t: &[char], i: &mut usize) -> NgsiResult<Vec<Vec<String>>> {
        if *i < t.len() && t[*i] == '(' {
            *i += 1;
            let inner = or(t, i)?;
            if *i >= t.len() || t[*i] != ')' {
                return Err(NgsiError::bad("type", "has an unclosed '('"));
            }
            *i += 1;
            return Ok(inner);
        }
        let start = *i;
        while *i < t.len() && !matches!(t[*i], ',' | '|' | ';' | '(' | ')') {
            *i += 1;
        }
        let name: String = t[start..*i].iter().collect();
        let name = name.trim();
        if name.is_empty() {
            return Err(NgsiError::bad("type", "names an empty type"));
        }
        model::check_term("type", name)?;
        Ok(vec![vec![name.to_string()]])
    }
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    let dnf = or(&chars, &mut i)?;
    if i != chars.len() {
        return Err(NgsiError::bad(
            "type",
            format!("unexpected '{}' in the type selection", chars[i]),
        ));
    }
    // One conjunction per combination: keep the expression from exploding.
    if dnf.len() > 256 {
        return Err(NgsiError::bad("type", "the type selection is too complex"));
    }
    Ok(dnf)
}

/// Refuses patterns that most regular expression dialects reject but ours
/// would quietly read (a quantifier straight after another, as in `a**`).
fn check_pattern(pat: &str) -> NgsiResult<()> {
    let mut prev_quantifier = false;
    let mut in_class = false;
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
                prev_quantifier = false;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '*' | '+' if !in_class && prev_quantifier => {
                return Err(NgsiError::bad(
                    "idPattern",
                    format!("is not a valid pattern: '{c}' repeats a repetition"),
                ));
            }
            '*' | '+' | '}' if !in_class => prev_quantifier = true,
            // After a quantifier `?` makes it lazy (`*?`); alone it is one.
            '?' if !in_class => prev_quantifier = !prev_quantifier,
            _ => prev_quantifier = false,
        }
    }
    Ok(())
}

/// A parsed entity filter (query entities, batch-free).
#[derive(Debug, Default)]
pub struct Filter {
    ids: Option<BTreeSet<String>>,
    /// Entity type selection in disjunctive form: an entity passes when it
    /// has every type of at least one of the sets.
    types: Option<Vec<BTreeSet<String>>>,
    id_pattern: Option<regex::Regex>,
    attrs: Option<BTreeSet<String>>,
    q: Option<q::Query>,
    geo: Option<geoq::GeoQuery>,
}

impl Filter {
    /// Parses the filter parameters of a query.
    pub fn parse(p: &BTreeMap<String, String>, ctx: &Context) -> NgsiResult<Self> {
        let mut f = Filter::default();
        if let Some(ids) = p.get("id") {
            let mut set = BTreeSet::new();
            for id in ids.split(',') {
                model::check_id("id", id)?;
                set.insert(id.to_string());
            }
            f.ids = Some(set);
        }
        if let Some(t) = p.get("type") {
            let dnf = parse_type_selection(t)?;
            f.types = Some(
                dnf.into_iter()
                    .map(|all| all.iter().map(|ty| ctx.expand(ty)).collect())
                    .collect(),
            );
        }
        if let Some(pat) = p.get("idPattern") {
            check_pattern(pat)?;
            f.id_pattern = Some(regex::Regex::new(pat).map_err(|e| {
                NgsiError::bad("idPattern", format!("is not a valid pattern: {e}"))
            })?);
        }
        if let Some(core) = p
            .get("attrs")
            .and_then(|a| a.split(',').find(|n| matches!(*n, "id" | "type")))
        {
            return Err(NgsiError::bad(
                "attrs",
                format!("'{core}' is not an attribute (attrs names attributes only)"),
            ));
        }
        f.attrs = name_set(p, "attrs", ctx, false)?;
        if let Some(qs) = p.get("q") {
            f.q = Some(q::parse(qs).map_err(|e| NgsiError::bad("q", e))?);
        }
        match (p.get("georel"), p.get("geometry"), p.get("coordinates")) {
            (None, None, None) => {}
            (Some(rel), Some(g), Some(c)) => {
                let rel = geoq::parse_georel(rel).map_err(|e| NgsiError::bad("georel", e))?;
                let geometry =
                    geoq::parse_geometry(g, c).map_err(|(field, e)| NgsiError::bad(field, e))?;
                let property = p
                    .get("geoproperty")
                    .cloned()
                    .unwrap_or_else(|| "location".into());
                model::check_term("geoproperty", &property)?;
                f.geo = Some(geoq::GeoQuery {
                    rel,
                    geometry,
                    property,
                });
            }
            (rel, g, _) => {
                let missing = if rel.is_none() {
                    "georel"
                } else if g.is_none() {
                    "geometry"
                } else {
                    "coordinates"
                };
                return Err(NgsiError::bad(
                    missing,
                    "is required in a geo-query (georel, geometry and coordinates go together)",
                ));
            }
        }
        Ok(f)
    }

    /// Whether at least one criterion narrows the query (NGSI-LD requires one).
    pub fn is_narrowing(&self) -> bool {
        self.ids.is_some()
            || self.types.is_some()
            || self.id_pattern.is_some()
            || self.attrs.is_some()
            || self.q.is_some()
            || self.geo.is_some()
    }

    /// Whether an entity passes the filter.
    pub fn matches(&self, doc: &Doc, ctx: &Context) -> bool {
        let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        if self.ids.as_ref().is_some_and(|s| !s.contains(id)) {
            return false;
        }
        if self.id_pattern.as_ref().is_some_and(|r| !r.is_match(id)) {
            return false;
        }
        if let Some(t) = &self.types
            && !{
                let has = model::types_of(doc);
                t.iter().any(|all| all.iter().all(|x| has.contains(x)))
            }
        {
            return false;
        }
        if let Some(a) = &self.attrs
            && !a.iter().any(|n| doc.contains_key(n))
        {
            return false;
        }
        if let Some(qq) = &self.q
            && !q::matches(qq, doc, ctx)
        {
            return false;
        }
        if let Some(g) = &self.geo {
            let key = ctx.expand(&g.property);
            let geom = doc
                .get(&key)
                .and_then(|v| v.get(0))
                .and_then(|i| i.get("value"))
                .and_then(|v| serde_json::from_value::<geojson::Geometry>(v.clone()).ok())
                .and_then(|g| geo::Geometry::<f64>::try_from(g).ok());
            match geom {
                Some(geom) if geoq::holds(g, &geom) => {}
                _ => return false,
            }
        }
        true
    }
}

fn parse_count(p: &BTreeMap<String, String>, key: &str, default: usize) -> NgsiResult<usize> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| NgsiError::bad(key, format!("'{v}' is not a non-negative integer"))),
    }
}

async fn query(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    let p = params(rq.as_deref(), QUERY_PARAMS)?;
    let ctx = http::request_context(&s, &headers).await?;
    run_query(&s, media, &ctx, &p).await
}

/// `POST /entityOperations/query`: the query as a body (entities selectors,
/// attrs, q, geoQ), paging and options as parameters.
async fn batch_query(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    let mut p = params(
        rq.as_deref(),
        &[
            "limit", "offset", "count", "options", "format", "local", "lang",
        ],
    )?;
    let (json, ctx) = one_body(&s, &headers, &bytes, false).await?;
    let Value::Object(body) = json else {
        return Err(NgsiError::bad("", "the body must be a Query object"));
    };
    match body.get("type").and_then(Value::as_str) {
        Some("Query") => {}
        _ => return Err(NgsiError::bad("type", "must be \"Query\"")),
    }
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        }
    };
    if let Some(Value::Array(sel)) = body.get("entities") {
        let (mut types, mut ids) = (Vec::new(), Vec::new());
        for e in sel {
            if let Some(t) = e.get("type") {
                types.extend(list(t));
            }
            if let Some(i) = e.get("id") {
                ids.extend(list(i));
            }
            if let Some(Value::String(pat)) = e.get("idPattern") {
                p.insert("idPattern".into(), pat.clone());
            }
        }
        if !types.is_empty() {
            p.insert("type".into(), types.join(","));
        }
        if !ids.is_empty() {
            p.insert("id".into(), ids.join(","));
        }
    }
    if let Some(a) = body.get("attrs") {
        p.insert("attrs".into(), list(a).join(","));
    }
    if let Some(Value::String(q)) = body.get("q") {
        p.insert("q".into(), q.clone());
    }
    if let Some(Value::Object(g)) = body.get("geoQ") {
        for k in ["georel", "geometry", "geoproperty"] {
            if let Some(Value::String(v)) = g.get(k) {
                p.insert(k.into(), v.clone());
            }
        }
        if let Some(c) = g.get("coordinates") {
            let text = match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            p.insert("coordinates".into(), text);
        }
    }
    run_query(&s, media, &ctx, &p).await
}

async fn run_query(
    s: &NgsiState,
    media: Media,
    ctx: &Context,
    p: &BTreeMap<String, String>,
) -> NgsiResult<Response> {
    let (s, ctx, p) = (s.clone(), ctx.clone(), p.clone());
    let o = options(&p)?;
    let r = render_opts(&p, &ctx, o)?;
    let f = Filter::parse(&p, &ctx)?;
    let local = p.get("local").is_some_and(|v| v == "true");
    if !f.is_narrowing() && !local {
        return Err(NgsiError::bad(
            "type",
            "a query needs at least one of type, id, idPattern, attrs, q or a geo-query",
        ));
    }
    let limit = parse_count(&p, "limit", 20)?;
    let offset = parse_count(&p, "offset", 0)?;
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
    if limit > s.config.max_limit {
        return Err(NgsiError::bad(
            "limit",
            format!("must be at most {}", s.config.max_limit),
        ));
    }
    if limit == 0 && !count {
        return Err(NgsiError::bad("limit", "0 is only allowed with count=true"));
    }
    let order = match p.get("orderBy") {
        Some(o) => parse_order(o)?,
        None => Vec::new(),
    };
    let all = load_all(&s).await?;
    let mut matching: Vec<&Doc> = all.iter().filter(|d| f.matches(d, &ctx)).collect();
    if !order.is_empty() {
        // Stable: entities equal on every key stay in id order.
        matching.sort_by(|a, b| compare_by(&order, a, b, &ctx));
    }
    let total = matching.len();
    let page_docs: Vec<&Doc> = matching.into_iter().skip(offset).take(limit).collect();
    let mut page: Vec<Value> = page_docs
        .iter()
        .map(|d| model::render(d, &ctx, &r))
        .collect();
    match parse_join(&p)? {
        Some((Join::Inline, level)) => {
            for (d, out) in page_docs.iter().zip(page.iter_mut()) {
                inline(&s, &ctx, &r, d, out, level).await?;
            }
        }
        Some((Join::Flat, level)) => page.extend(flat(&s, &ctx, &r, &page_docs, level).await?),
        None => {}
    }
    let mut body = Value::Array(page);
    if media == Media::GeoJson {
        body = http::geojson(
            body,
            p.get("geometryProperty").map_or("location", String::as_str),
        );
    }
    let mut resp = answer(StatusCode::OK, media, &ctx, body);
    if count && let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert("NGSILD-Results-Count", v);
    }
    Ok(resp)
}

/// One `orderBy` key: a member path and whether it sorts descending.
type OrderKey = (Vec<String>, bool);

fn parse_order(raw: &str) -> NgsiResult<Vec<OrderKey>> {
    let mut out = Vec::new();
    for part in raw.split(',') {
        let (path, dir) = part.split_once(';').unwrap_or((part, "asc"));
        let desc = match dir {
            "asc" => false,
            "desc" => true,
            d => {
                return Err(NgsiError::bad(
                    "orderBy",
                    format!("'{d}' is not asc or desc"),
                ));
            }
        };
        let segs: Vec<String> = path.split('.').map(String::from).collect();
        for s in &segs {
            model::check_term("orderBy", s)?;
        }
        out.push((segs, desc));
    }
    Ok(out)
}

fn order_value(path: &[String], doc: &Doc, ctx: &Context) -> Option<Value> {
    match path {
        [one] if matches!(one.as_str(), "id" | "createdAt" | "modifiedAt") => doc.get(one).cloned(),
        [one] if one == "type" => model::types_of(doc).first().map(|t| json!(ctx.compact(t))),
        _ => q::values_at(path, doc, ctx).first().map(|v| (*v).clone()),
    }
}

fn compare_by(order: &[OrderKey], a: &Doc, b: &Doc, ctx: &Context) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (path, desc) in order {
        let (va, vb) = (order_value(path, a, ctx), order_value(path, b, ctx));
        let o = match (&va, &vb) {
            (Some(x), Some(y)) => q::compare(x, y).unwrap_or(Ordering::Equal),
            // Entities without the member come last either way.
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// `DELETE /entities?type=…`: deletes the matching entities, or with
/// `keep` / `drop` only removes attributes from them.
async fn purge(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let p = params(
        rq.as_deref(),
        &[
            "type",
            "id",
            "idPattern",
            "q",
            "keep",
            "drop",
            "local",
            "scopeQ",
        ],
    )?;
    let w = s.write(&headers).await?;
    let ctx = http::request_context(&s, &headers).await?;
    let f = Filter::parse(&p, &ctx)?;
    let local = p.get("local").is_some_and(|v| v == "true");
    if !f.is_narrowing() && !local {
        return Err(NgsiError::bad(
            "type",
            "purging needs at least one of type, id, idPattern, q or local=true",
        ));
    }
    if p.contains_key("keep") && p.contains_key("drop") {
        return Err(NgsiError::bad("keep", "cannot be given together with drop"));
    }
    let keep = name_set(&p, "keep", &ctx, false)?;
    let drop = name_set(&p, "drop", &ctx, false)?;
    let all = load_all(&s).await?;
    let matching: Vec<&Doc> = all.iter().filter(|d| f.matches(d, &ctx)).collect();
    if keep.is_none() && drop.is_none() {
        let mut gone = Vec::new();
        for d in matching {
            let id = d
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(l) = load(&s, &id).await? {
                gone.push((id, l.created_at));
            }
        }
        tombstone(&s, &gone).await?;
        return Ok(no_content());
    }
    let mut pending = Vec::new();
    for d in matching {
        let id = d
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(l) = load(&s, &id).await? else {
            continue;
        };
        let mut doc = l.doc.clone();
        let names: Vec<String> = model::attribute_names(&doc).cloned().collect();
        for n in names {
            let remove = match (&keep, &drop) {
                (Some(k), _) => !k.contains(&n),
                (_, Some(dr)) => dr.contains(&n),
                _ => false,
            };
            if remove {
                doc.remove(&n);
            }
        }
        pending.push(Pending::from_loaded(l, doc, BTreeSet::new()));
    }
    commit(&s, &w, pending).await?;
    Ok(no_content())
}

/// `join=inline|flat` with `joinLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    Inline,
    Flat,
}

fn parse_join(p: &BTreeMap<String, String>) -> NgsiResult<Option<(Join, usize)>> {
    let join = match p.get("join").map(String::as_str) {
        None => return Ok(None),
        Some("inline") => Join::Inline,
        Some("flat") => Join::Flat,
        Some("@none") => return Ok(None),
        Some(j) => {
            return Err(NgsiError::bad(
                "join",
                format!("'{j}' is not inline, flat or @none"),
            ));
        }
    };
    let level = parse_count(p, "joinLevel", 1)?;
    if !(1..=5).contains(&level) {
        return Err(NgsiError::bad("joinLevel", "must be between 1 and 5"));
    }
    Ok(Some((join, level)))
}

/// The entities a stored entity's Relationships point at: (attribute, instance index, object).
fn links(doc: &Doc) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for name in model::attribute_names(doc) {
        let Some(Value::Array(instances)) = doc.get(name) else {
            continue;
        };
        for (i, inst) in instances.iter().enumerate() {
            if inst.get("type").and_then(Value::as_str) != Some("Relationship") {
                continue;
            }
            match inst.get("object") {
                Some(Value::String(o)) => out.push((name.clone(), i, o.clone())),
                Some(Value::Array(a)) => {
                    out.extend(
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|o| (name.clone(), i, o.to_string())),
                    );
                }
                _ => {}
            }
        }
    }
    out
}

/// Linked entities are shown whole, in the same representation.
fn linked_render(r: &Render) -> Render {
    Render {
        key_values: r.key_values,
        sys_attrs: r.sys_attrs,
        lang: r.lang.clone(),
        ..Render::default()
    }
}

type JoinFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = NgsiResult<()>> + Send + 'a>>;

/// Puts each linked entity inside its Relationship (`entity`, or in place of the id with keyValues).
fn inline<'a>(
    s: &'a NgsiState,
    ctx: &'a Context,
    r: &'a Render,
    doc: &'a Doc,
    out: &'a mut Value,
    level: usize,
) -> JoinFuture<'a> {
    Box::pin(async move {
        if level == 0 {
            return Ok(());
        }
        let lr = linked_render(r);
        for (name, idx, object) in links(doc) {
            let Some(l) = load(s, &object).await? else {
                continue;
            };
            let mut child = model::render(&l.doc, ctx, &lr);
            inline(s, ctx, r, &l.doc, &mut child, level - 1).await?;
            let key = ctx.compact(&name);
            let Some(slot) = out.get_mut(&key) else {
                continue;
            };
            let slot = match slot {
                Value::Array(items) => match items.get_mut(idx) {
                    Some(v) => v,
                    None => continue,
                },
                one => one,
            };
            if r.key_values {
                *slot = child;
            } else if let Value::Object(o) = slot {
                o.insert("entity".into(), child);
            }
        }
        Ok(())
    })
}

/// The entities linked from `roots`, breadth first up to `level`, each once.
async fn flat(
    s: &NgsiState,
    ctx: &Context,
    r: &Render,
    roots: &[&Doc],
    level: usize,
) -> NgsiResult<Vec<Value>> {
    let lr = linked_render(r);
    let mut seen: BTreeSet<String> = roots
        .iter()
        .filter_map(|d| d.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let mut frontier: Vec<Doc> = roots.iter().map(|d| (*d).clone()).collect();
    let mut out = Vec::new();
    for _ in 0..level {
        let mut next = Vec::new();
        for d in &frontier {
            for (_, _, object) in links(d) {
                if !seen.insert(object.clone()) {
                    continue;
                }
                if let Some(l) = load(s, &object).await? {
                    out.push(model::render(&l.doc, ctx, &lr));
                    next.push(l.doc);
                }
            }
        }
        frontier = next;
    }
    Ok(out)
}

async fn loaded_or_404(s: &NgsiState, id: &str) -> NgsiResult<Loaded> {
    model::check_id("id", id)?;
    load(s, id)
        .await?
        .ok_or_else(|| NgsiError::ResourceNotFound(format!("entity '{id}' does not exist")))
}

async fn remove(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local", "type"])?;
    let _w = s.write(&headers).await?;
    let l = loaded_or_404(&s, &id).await?;
    tombstone(&s, &[(id, l.created_at)]).await?;
    Ok(no_content())
}

async fn tombstone(s: &NgsiState, ids: &[(String, Timestamp)]) -> NgsiResult<()> {
    let now = s.clock.now();
    let docs: Vec<LdDocument> = ids
        .iter()
        .map(|(id, created)| LdDocument {
            id: id.clone(),
            doc: None,
            created_at: *created,
            modified_at: now,
        })
        .collect();
    s.ld()?.put_ld_documents(&docs).await?;
    Ok(())
}

/// Puts the instances of `new` into `old` for one attribute: instances with
/// the same datasetId are replaced (or merged when `merge`), others added.
fn put_instances(old: &mut Vec<Value>, new: Vec<Value>, merge: bool) {
    for n in new {
        let ds = n.get("datasetId").cloned();
        match old.iter_mut().find(|o| o.get("datasetId").cloned() == ds) {
            Some(o) if merge => merge_instance(o, n),
            Some(o) => {
                let created = o.get("createdAt").cloned();
                *o = n;
                if let (Some(c), Value::Object(m)) = (created, o) {
                    m.insert("createdAt".into(), c);
                }
            }
            None => old.push(n),
        }
    }
}

fn merge_instance(old: &mut Value, new: Value) {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return;
    };
    for (k, v) in n {
        if k == "createdAt" {
            continue;
        }
        match (o.get_mut(&k), v) {
            // Sub-attributes are keyed by IRI; keywords (value, unitCode…) are not.
            (Some(Value::Array(oa)), Value::Array(na)) if k.contains(':') => {
                put_instances(oa, na, true);
            }
            (_, v) => {
                o.insert(k, v);
            }
        }
    }
}

fn compact_names(names: &[String], ctx: &Context) -> Vec<Value> {
    names.iter().map(|n| json!(ctx.compact(n))).collect()
}

fn partial_result(
    updated: Vec<String>,
    not_updated: Vec<(String, String)>,
    ctx: &Context,
) -> Response {
    if not_updated.is_empty() {
        return no_content();
    }
    let body = json!({
        "updated": compact_names(&updated, ctx),
        "notUpdated": not_updated.iter().map(|(n, why)| json!({"attributeName": ctx.compact(n), "reason": why})).collect::<Vec<_>>(),
    });
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn fragment_attrs(frag: Doc) -> Vec<(String, Vec<Value>)> {
    frag.into_iter()
        .filter_map(|(k, v)| match v {
            Value::Array(a) => Some((k, a)),
            _ => None,
        })
        .collect()
}

async fn append(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    let p = params(rq.as_deref(), &["options", "local"])?;
    let o = options(&p)?;
    let w = s.write(&headers).await?;
    let (json, ctx) = one_body(&s, &headers, &bytes, false).await?;
    let now = s.clock.now();
    let frag = model::parse_fragment(&json, &ctx, Mode::Full, now)?;
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let (mut updated, mut touched) = (Vec::new(), BTreeSet::new());
    let not_updated: Vec<(String, String)> = Vec::new();
    for (name, mut instances) in fragment_attrs(frag) {
        let exists = doc.contains_key(&name);
        // With noOverwrite an existing attribute is kept: asked for, not an error.
        if exists && o.no_overwrite {
            continue;
        }
        if remove_nulls(&mut doc, &name, &Value::Array(instances.clone())) {
            updated.push(name);
            continue;
        }
        let created = doc
            .get(&name)
            .and_then(|v| v.get(0))
            .and_then(|i| i.get("createdAt"))
            .cloned();
        model::stamp(&mut instances, created.as_ref(), now);
        match doc.get_mut(&name) {
            Some(Value::Array(old)) => put_instances(old, instances, false),
            _ => {
                doc.insert(name.clone(), Value::Array(instances));
            }
        }
        touched.insert(name.clone());
        updated.push(name);
    }
    if let Some(scope) = json.get("scope")
        && !o.no_overwrite
    {
        doc.insert("scope".into(), scope.clone());
    }
    append_types(&mut doc, &json, &ctx)?;
    commit(&s, &w, vec![Pending::from_loaded(l, doc, touched)]).await?;
    Ok(partial_result(updated, not_updated, &ctx))
}

/// Adds the types a fragment names to the entity's (an entity may have
/// several; a type it already has is not repeated). Whether any was added.
fn append_types(doc: &mut Doc, fragment: &Value, ctx: &Context) -> NgsiResult<bool> {
    let Some(t) = fragment.get("type") else {
        return Ok(false);
    };
    let extra = model::parse_types(Some(t), ctx)?;
    let mut types = model::types_of(doc);
    let before = types.len();
    for t in extra {
        if !types.contains(&t) {
            types.push(t);
        }
    }
    let added = types.len() > before;
    doc.insert("type".into(), json!(types));
    Ok(added)
}

async fn update_attrs(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local", "options"])?;
    let w = s.write(&headers).await?;
    let (json, ctx) = one_body(&s, &headers, &bytes, true).await?;
    let now = s.clock.now();
    let frag = model::parse_fragment(&json, &ctx, Mode::Full, now)?;
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let (mut updated, mut not_updated, mut touched) = (Vec::new(), Vec::new(), BTreeSet::new());
    for (name, mut instances) in fragment_attrs(frag) {
        if !doc.contains_key(&name) {
            not_updated.push((name, "the entity has no such attribute".into()));
            continue;
        }
        if remove_nulls(&mut doc, &name, &Value::Array(instances.clone())) {
            updated.push(name);
            continue;
        }
        let Some(Value::Array(old)) = doc.get_mut(&name) else {
            continue;
        };
        let created = old.first().and_then(|i| i.get("createdAt")).cloned();
        model::stamp(&mut instances, created.as_ref(), now);
        put_instances(old, instances, false);
        touched.insert(name.clone());
        updated.push(name);
    }
    let typed = append_types(&mut doc, &json, &ctx)?;
    if !updated.is_empty() || typed {
        commit(&s, &w, vec![Pending::from_loaded(l, doc, touched)]).await?;
    }
    Ok(partial_result(updated, not_updated, &ctx))
}

fn attr_fragment(json: &Value, name: &str) -> Value {
    // The body of /attrs/{attr} is the attribute itself; some clients wrap
    // it in an object keyed by the attribute name.
    match json.get(name) {
        Some(inner) if json.as_object().is_some_and(|o| o.len() == 1) => inner.clone(),
        _ => json.clone(),
    }
}

async fn partial_update(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let w = s.write(&headers).await?;
    model::check_term("attrId", &attr)?;
    let (json, ctx) = one_body(&s, &headers, &bytes, true).await?;
    let now = s.clock.now();
    let name = ctx.expand(&attr);
    let frag = attr_fragment(&json, &attr);
    if is_null_instance(&frag) {
        let l = loaded_or_404(&s, &id).await?;
        let mut doc = l.doc.clone();
        if !doc.contains_key(&name) {
            return Err(NgsiError::ResourceNotFound(format!(
                "entity '{id}' has no attribute '{attr}'"
            )));
        }
        remove_nulls(&mut doc, &name, &frag);
        commit(&s, &w, vec![Pending::from_loaded(l, doc, BTreeSet::new())]).await?;
        return Ok(no_content());
    }
    let mut new = model::parse_attribute(&attr, &frag, &ctx, Mode::Partial, now)?;
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let Some(Value::Array(old)) = doc.get_mut(&name) else {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' has no attribute '{attr}'"
        )));
    };
    for n in &mut new {
        let ds = n.get("datasetId").cloned();
        let Some(o) = old.iter_mut().find(|o| o.get("datasetId").cloned() == ds) else {
            return Err(NgsiError::ResourceNotFound(format!(
                "attribute '{attr}' of '{id}' has no instance with that datasetId"
            )));
        };
        if let Value::Object(m) = n {
            m.insert("modifiedAt".into(), json!(crate::time_text(now)));
        }
        merge_instance(o, n.take());
    }
    let touched = BTreeSet::from([name]);
    commit(&s, &w, vec![Pending::from_loaded(l, doc, touched)]).await?;
    Ok(no_content())
}

async fn replace_attr(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let w = s.write(&headers).await?;
    model::check_term("attrId", &attr)?;
    let (json, ctx) = one_body(&s, &headers, &bytes, false).await?;
    let now = s.clock.now();
    let name = ctx.expand(&attr);
    let frag = attr_fragment(&json, &attr);
    let mut new = model::parse_attribute(&attr, &frag, &ctx, Mode::Full, now)?;
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let Some(old) = doc.get(&name) else {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' has no attribute '{attr}'"
        )));
    };
    let created = old.get(0).and_then(|i| i.get("createdAt")).cloned();
    model::stamp(&mut new, created.as_ref(), now);
    doc.insert(name.clone(), Value::Array(new));
    commit(
        &s,
        &w,
        vec![Pending::from_loaded(l, doc, BTreeSet::from([name]))],
    )
    .await?;
    Ok(no_content())
}

async fn delete_attr(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let p = params(rq.as_deref(), &["datasetId", "deleteAll", "local", "lang"])?;
    let w = s.write(&headers).await?;
    model::check_term("attrId", &attr)?;
    let ctx = http::request_context(&s, &headers).await?;
    let name = ctx.expand(&attr);
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let Some(Value::Array(old)) = doc.get_mut(&name) else {
        return Err(NgsiError::ResourceNotFound(format!(
            "entity '{id}' has no attribute '{attr}'"
        )));
    };
    let delete_all = p.get("deleteAll").is_some_and(|v| v == "true");
    if !delete_all {
        let ds = p.get("datasetId").map(|d| json!(d));
        let before = old.len();
        old.retain(|i| i.get("datasetId").cloned() != ds);
        if old.len() == before {
            return Err(NgsiError::ResourceNotFound(format!(
                "attribute '{attr}' of '{id}' has no instance with that datasetId"
            )));
        }
    }
    if delete_all || old.is_empty() {
        doc.remove(&name);
    }
    commit(&s, &w, vec![Pending::from_loaded(l, doc, BTreeSet::new())]).await?;
    Ok(no_content())
}

async fn replace(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let w = s.write(&headers).await?;
    let (mut json, ctx) = one_body(&s, &headers, &bytes, false).await?;
    model::check_id("id", &id)?;
    if let Some(obj) = json.as_object_mut() {
        match obj.get("id") {
            Some(Value::String(given)) if *given != id => {
                return Err(NgsiError::bad(
                    "id",
                    format!("'{given}' is not the entity of the path ('{id}')"),
                ));
            }
            _ => {
                obj.insert("id".into(), json!(id));
            }
        }
    }
    let now = s.clock.now();
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = model::parse_entity(&json, &ctx, now)?;
    stamp_all(&mut doc, Some(&l.doc), now);
    let touched = model::attribute_names(&doc).cloned().collect();
    commit(&s, &w, vec![Pending::from_loaded(l, doc, touched)]).await?;
    Ok(no_content())
}

/// Whether an instance says "delete me" (`urn:ngsi-ld:null` as its value).
fn is_null_instance(i: &Value) -> bool {
    i.as_str() == Some(NULL_URI)
        || ["value", "object", "languageMap", "vocab", "json"]
            .iter()
            .any(|k| i.get(*k).and_then(Value::as_str) == Some(NULL_URI))
        || i.get("languageMap")
            .and_then(|m| m.get("@none"))
            .and_then(Value::as_str)
            == Some(NULL_URI)
}

/// Removes the instances a fragment nulls out (by datasetId; the whole
/// attribute when none is left). Returns false when the fragment is not a null.
fn remove_nulls(doc: &mut Doc, name: &str, v: &Value) -> bool {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if items.is_empty() || !items.iter().all(|i| is_null_instance(i)) {
        return false;
    }
    if let Some(Value::Array(old)) = doc.get_mut(name) {
        for i in items {
            let ds = i.get("datasetId").cloned();
            old.retain(|o| o.get("datasetId").cloned() != ds);
        }
        if old.is_empty() {
            doc.remove(name);
        }
    }
    true
}

/// Merges a fragment into an entity (PATCH /entities/{id}, batch merge):
/// new attributes are added, existing ones merged, `urn:ngsi-ld:null` deletes.
fn merge_into(
    doc: &mut Doc,
    json: &Value,
    ctx: &Context,
    now: Timestamp,
) -> NgsiResult<BTreeSet<String>> {
    let Value::Object(obj) = json else {
        return Err(NgsiError::bad(
            "",
            "the body must be a JSON object of attributes",
        ));
    };
    let mut touched = BTreeSet::new();
    for (k, v) in obj {
        if matches!(
            k.as_str(),
            "id" | "type" | "@context" | "createdAt" | "modifiedAt" | "scope"
        ) {
            continue;
        }
        model::check_term(k, k)?;
        let name = ctx.expand(k);
        if remove_nulls(doc, &name, v) {
            continue;
        }
        match doc.get_mut(&name) {
            Some(Value::Array(old)) => {
                let mut new = model::parse_attribute(k, v, ctx, Mode::Partial, now)?;
                for n in &mut new {
                    if let Value::Object(m) = n {
                        m.insert("modifiedAt".into(), json!(crate::time_text(now)));
                    }
                }
                put_instances(old, new, true);
            }
            _ => {
                let mut new = model::parse_attribute(k, v, ctx, Mode::Full, now)?;
                model::stamp(&mut new, None, now);
                doc.insert(name.clone(), Value::Array(new));
            }
        }
        touched.insert(name);
    }
    if let Some(t) = obj.get("type") {
        let types = model::parse_types(Some(t), ctx)?;
        doc.insert("type".into(), json!(types));
    }
    if let Some(scope) = obj.get("scope") {
        doc.insert("scope".into(), scope.clone());
    }
    Ok(touched)
}

async fn merge(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local", "options", "format"])?;
    let w = s.write(&headers).await?;
    let (json, ctx) = one_body(&s, &headers, &bytes, true).await?;
    if let Some(Value::String(given)) = json.get("id")
        && *given != id
    {
        return Err(NgsiError::bad(
            "id",
            format!("'{given}' is not the entity of the path ('{id}')"),
        ));
    }
    let now = s.clock.now();
    let l = loaded_or_404(&s, &id).await?;
    let mut doc = l.doc.clone();
    let touched = merge_into(&mut doc, &json, &ctx, now)?;
    commit(&s, &w, vec![Pending::from_loaded(l, doc, touched)]).await?;
    Ok(no_content())
}

// --- batch operations -----------------------------------------------------

/// Outcome of a batch.
#[derive(Debug, Default)]
struct BatchResult {
    success: Vec<String>,
    errors: Vec<(String, NgsiError)>,
}

impl BatchResult {
    fn fail(&mut self, id: String, e: NgsiError) {
        self.errors.push((id, e));
    }

    fn respond(self, ok: StatusCode, created: Option<Vec<String>>) -> Response {
        if self.errors.is_empty() {
            return match created {
                Some(ids) if !ids.is_empty() || ok == StatusCode::CREATED => (
                    StatusCode::CREATED,
                    [(header::CONTENT_TYPE, "application/json")],
                    json!(ids).to_string(),
                )
                    .into_response(),
                _ => no_content(),
            };
        }
        let body = json!({
            "success": self.success,
            "errors": self.errors.iter().map(|(id, e)| json!({"entityId": id, "error": e.problem()})).collect::<Vec<_>>(),
        });
        (
            StatusCode::MULTI_STATUS,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

fn batch_items(b: &Body, max: usize) -> NgsiResult<Vec<Value>> {
    match &b.json {
        Value::Array(items) if items.is_empty() => {
            Err(NgsiError::bad("", "a batch must hold at least one entity"))
        }
        Value::Array(items) if items.len() <= max => Ok(items.clone()),
        Value::Array(items) => Err(NgsiError::PayloadTooLarge(format!(
            "a batch may hold at most {max} entities, got {}",
            items.len()
        ))),
        _ => Err(NgsiError::bad("", "a batch body must be a JSON array")),
    }
}

fn item_id(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

const MAX_BATCH: usize = 10_000;

async fn batch_create(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let w = s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let items = batch_items(&b, MAX_BATCH)?;
    let now = s.clock.now();
    let mut res = BatchResult::default();
    let mut pending = Vec::new();
    let mut seen = BTreeSet::new();
    for mut item in items {
        let id = item_id(&item);
        let ctx = match http::take_context(&s, &b, &mut item).await {
            Ok(c) => c,
            Err(e) => {
                res.fail(id, e);
                continue;
            }
        };
        let mut doc = match model::parse_entity(&item, &ctx, now) {
            Ok(d) => d,
            Err(e) => {
                res.fail(id, e);
                continue;
            }
        };
        if !seen.insert(id.clone()) || load(&s, &id).await?.is_some() {
            res.fail(
                id.clone(),
                NgsiError::AlreadyExists(format!("entity '{id}' already exists")),
            );
            continue;
        }
        stamp_all(&mut doc, None, now);
        let touched = model::attribute_names(&doc).cloned().collect();
        let existing = s.store().entity(&id).await?;
        pending.push(Pending {
            doc,
            created_at: now,
            touched,
            existing,
        });
        res.success.push(id);
    }
    commit(&s, &w, pending).await?;
    let created = res.success.clone();
    Ok(res.respond(StatusCode::CREATED, Some(created)))
}

async fn batch_upsert(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    let p = params(rq.as_deref(), &["options", "local"])?;
    let o = options(&p)?;
    if o.update && o.replace {
        return Err(NgsiError::bad(
            "options",
            "update and replace exclude each other",
        ));
    }
    let w = s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let items = batch_items(&b, MAX_BATCH)?;
    let now = s.clock.now();
    let mut res = BatchResult::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut created = Vec::new();
    for mut item in items {
        let id = item_id(&item);
        let outcome: NgsiResult<()> = async {
            let ctx = http::take_context(&s, &b, &mut item).await?;
            let mut doc = model::parse_entity(&item, &ctx, now)?;
            // A later item for the same id builds on the earlier one.
            let earlier = pending
                .iter()
                .position(|p| p.doc.get("id").and_then(Value::as_str) == Some(id.as_str()));
            let prior = match earlier {
                Some(i) => Some(pending.remove(i)),
                None => load(&s, &id).await?.map(|l| Pending {
                    doc: l.doc,
                    created_at: l.created_at,
                    touched: BTreeSet::new(),
                    existing: l.entity,
                }),
            };
            match prior {
                None => {
                    stamp_all(&mut doc, None, now);
                    let touched = model::attribute_names(&doc).cloned().collect();
                    let existing = s.store().entity(&id).await?;
                    pending.push(Pending {
                        doc,
                        created_at: now,
                        touched,
                        existing,
                    });
                    created.push(id.clone());
                }
                Some(mut prior) if o.update => {
                    let mut touched = prior.touched.clone();
                    for (name, mut inst) in fragment_attrs(doc) {
                        if name == "id" || name == "type" || name == "scope" {
                            continue;
                        }
                        model::stamp(&mut inst, None, now);
                        match prior.doc.get_mut(&name) {
                            Some(Value::Array(old)) => put_instances(old, inst, false),
                            _ => {
                                prior.doc.insert(name.clone(), Value::Array(inst));
                            }
                        }
                        touched.insert(name);
                    }
                    prior.touched = touched;
                    pending.push(prior);
                }
                Some(prior) => {
                    stamp_all(&mut doc, Some(&prior.doc), now);
                    let touched = model::attribute_names(&doc).cloned().collect();
                    pending.push(Pending {
                        doc,
                        created_at: prior.created_at,
                        touched,
                        existing: prior.existing,
                    });
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => res.success.push(id),
            Err(e) => res.fail(id, e),
        }
    }
    commit(&s, &w, pending).await?;
    Ok(res.respond(StatusCode::NO_CONTENT, Some(created)))
}

async fn batch_update(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    let p = params(rq.as_deref(), &["options", "local"])?;
    let o = options(&p)?;
    batch_modify(s, headers, bytes, false, o.no_overwrite).await
}

async fn batch_merge(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    batch_modify(s, headers, bytes, true, false).await
}

async fn batch_modify(
    s: NgsiState,
    headers: HeaderMap,
    bytes: Bytes,
    merge: bool,
    no_overwrite: bool,
) -> NgsiResult<Response> {
    let w = s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let items = batch_items(&b, MAX_BATCH)?;
    let now = s.clock.now();
    let mut res = BatchResult::default();
    let mut pending: Vec<Pending> = Vec::new();
    for mut item in items {
        let id = item_id(&item);
        let outcome: NgsiResult<()> = async {
            let ctx = http::take_context(&s, &b, &mut item).await?;
            model::check_id("id", &id)?;
            if !merge {
                // A bad fragment is the client's error whether or not the entity exists.
                model::parse_fragment(&item, &ctx, Mode::Full, now)?;
            }
            let earlier = pending
                .iter()
                .position(|p| p.doc.get("id").and_then(Value::as_str) == Some(id.as_str()));
            let mut prior = match earlier {
                Some(i) => pending.remove(i),
                None => {
                    let l = load(&s, &id).await?.ok_or_else(|| {
                        NgsiError::ResourceNotFound(format!("entity '{id}' does not exist"))
                    })?;
                    Pending {
                        doc: l.doc,
                        created_at: l.created_at,
                        touched: BTreeSet::new(),
                        existing: l.entity,
                    }
                }
            };
            if merge {
                let t = merge_into(&mut prior.doc, &item, &ctx, now)?;
                prior.touched.extend(t);
            } else {
                let frag = model::parse_fragment(&item, &ctx, Mode::Full, now)?;
                let mut kept = Vec::new();
                for (name, mut inst) in fragment_attrs(frag) {
                    if no_overwrite && prior.doc.contains_key(&name) {
                        kept.push(ctx.compact(&name));
                        continue;
                    }
                    model::stamp(&mut inst, None, now);
                    match prior.doc.get_mut(&name) {
                        Some(Value::Array(old)) => put_instances(old, inst, false),
                        _ => {
                            prior.doc.insert(name.clone(), Value::Array(inst));
                        }
                    }
                    prior.touched.insert(name);
                }
                append_types(&mut prior.doc, &item, &ctx)?;
                if !kept.is_empty() {
                    pending.push(prior);
                    return Err(NgsiError::bad(
                        "options",
                        format!(
                            "noOverwrite: attributes {} exist and were kept",
                            kept.join(", ")
                        ),
                    ));
                }
            }
            pending.push(prior);
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => res.success.push(id),
            Err(e) => res.fail(id, e),
        }
    }
    commit(&s, &w, pending).await?;
    Ok(res.respond(StatusCode::NO_CONTENT, None))
}

async fn batch_delete(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &["local"])?;
    let _w = s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let items = batch_items(&b, MAX_BATCH)?;
    let mut res = BatchResult::default();
    let mut gone = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item.as_str() else {
            res.fail(
                String::new(),
                NgsiError::bad(format!("[{i}]"), "must be an entity id"),
            );
            continue;
        };
        if let Err(e) = model::check_id(&format!("[{i}]"), id) {
            res.fail(id.to_string(), e);
            continue;
        }
        match load(&s, id).await? {
            Some(l) if seen.insert(id.to_string()) => {
                gone.push((id.to_string(), l.created_at));
                res.success.push(id.to_string());
            }
            _ => res.fail(
                id.to_string(),
                NgsiError::ResourceNotFound(format!("entity '{id}' does not exist")),
            ),
        }
    }
    tombstone(&s, &gone).await?;
    Ok(res.respond(StatusCode::NO_CONTENT, None))
}

// --- /types and /attributes -------------------------------------------------

/// Types and attributes over every entity: type → (entity count,
/// attribute → attribute types), attribute → (count, attribute types, entity types).
#[derive(Debug, Default)]
struct Catalogue {
    types: BTreeMap<String, (usize, BTreeMap<String, BTreeSet<String>>)>,
    attrs: BTreeMap<String, (usize, BTreeSet<String>, BTreeSet<String>)>,
}

fn catalogue(all: &[Doc]) -> Catalogue {
    let mut c = Catalogue::default();
    for d in all {
        let types = model::types_of(d);
        for t in &types {
            let e = c.types.entry(t.clone()).or_default();
            e.0 += 1;
            for a in model::attribute_names(d) {
                let at = d.get(a).and_then(model::attribute_type).unwrap_or_default();
                e.1.entry(a.clone()).or_default().insert(at);
            }
        }
        for a in model::attribute_names(d) {
            let e = c.attrs.entry(a.clone()).or_default();
            e.0 += 1;
            if let Some(at) = d.get(a).and_then(model::attribute_type) {
                e.1.insert(at);
            }
            e.2.extend(types.iter().cloned());
        }
    }
    c
}

fn details(p: &BTreeMap<String, String>) -> NgsiResult<bool> {
    match p.get("details").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(NgsiError::bad(
            "details",
            format!("'{v}' is not true or false"),
        )),
    }
}

fn list_id(kind: &str, names: &[String]) -> String {
    // A stable id per content, so the same listing gets the same id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in names.join(",").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("urn:ngsi-ld:{kind}:{h:016x}")
}

async fn types(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    let p = params(rq.as_deref(), &["details", "local"])?;
    let ctx = http::request_context(&s, &headers).await?;
    let c = catalogue(&load_all(&s).await?);
    let body = if details(&p)? {
        Value::Array(
            c.types
                .iter()
                .map(|(t, (_, attrs))| {
                    json!({
                        "id": t,
                        "type": "EntityType",
                        "typeName": ctx.compact(t),
                        "attributeNames": attrs.keys().map(|a| ctx.compact(a)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        let names: Vec<String> = c.types.keys().map(|t| ctx.compact(t)).collect();
        json!({"id": list_id("EntityTypeList", &names), "type": "EntityTypeList", "typeList": names})
    };
    Ok(answer(StatusCode::OK, media, &ctx, body))
}

async fn type_info(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(ty): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    params(rq.as_deref(), &["local"])?;
    model::check_term("type", &ty)?;
    let ctx = http::request_context(&s, &headers).await?;
    let iri = ctx.expand(&ty);
    let c = catalogue(&load_all(&s).await?);
    let Some((count, attrs)) = c.types.get(&iri) else {
        return Err(NgsiError::ResourceNotFound(format!(
            "no entity has type '{ty}'"
        )));
    };
    let body = json!({
        "id": iri,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact(&iri),
        "entityCount": count,
        "attributeDetails": attrs.iter().map(|(a, kinds)| json!({
            "id": a,
            "type": "Attribute",
            "attributeName": ctx.compact(a),
            "attributeTypes": kinds.iter().filter(|k| !k.is_empty()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    Ok(answer(StatusCode::OK, media, &ctx, body))
}

async fn attributes(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    let p = params(rq.as_deref(), &["details", "local"])?;
    let ctx = http::request_context(&s, &headers).await?;
    let c = catalogue(&load_all(&s).await?);
    let body = if details(&p)? {
        Value::Array(
            c.attrs
                .iter()
                .map(|(a, (_, _, types))| {
                    json!({
                        "id": a,
                        "type": "Attribute",
                        "attributeName": ctx.compact(a),
                        "typeNames": types.iter().map(|t| ctx.compact(t)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        let names: Vec<String> = c.attrs.keys().map(|a| ctx.compact(a)).collect();
        json!({"id": list_id("AttributeList", &names), "type": "AttributeList", "attributeList": names})
    };
    Ok(answer(StatusCode::OK, media, &ctx, body))
}

async fn attribute_info(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(attr): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = accept(&headers)?;
    s.read(&headers).await?;
    params(rq.as_deref(), &["local"])?;
    model::check_term("attrId", &attr)?;
    let ctx = http::request_context(&s, &headers).await?;
    let iri = ctx.expand(&attr);
    let c = catalogue(&load_all(&s).await?);
    let Some((count, kinds, types)) = c.attrs.get(&iri) else {
        return Err(NgsiError::ResourceNotFound(format!(
            "no entity has attribute '{attr}'"
        )));
    };
    let body = json!({
        "id": iri,
        "type": "Attribute",
        "attributeName": ctx.compact(&iri),
        "attributeCount": count,
        "attributeTypes": kinds,
        "typeNames": types.iter().map(|t| ctx.compact(t)).collect::<Vec<_>>(),
    });
    Ok(answer(StatusCode::OK, media, &ctx, body))
}
