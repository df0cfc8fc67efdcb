//! JSON-LD @context handling for the terms NGSI-LD needs: entity types,
//! attribute names and sub-attribute names are expanded to IRIs on the way
//! in and compacted on the way out. The core context is compiled in and
//! never fetched; other contexts are read from the configured directory,
//! or fetched over HTTP(S) with a timeout and cached (bounded).

use crate::error::NgsiError;
use panorama_core::{Clock, Timestamp};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The core context this server speaks (the version the ETSI suite uses).
pub const CORE_CONTEXT_URL: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld";
/// The NGSI-LD namespace.
pub const NGSI_LD: &str = "https://uri.etsi.org/ngsi-ld/";
/// Where terms no context defines are put (the core context's `@vocab`).
pub const DEFAULT_VOCAB: &str = "https://uri.etsi.org/ngsi-ld/default-context/";
/// The Link relation of a JSON-LD context.
pub const CONTEXT_REL: &str = "http://www.w3.org/ns/json-ld#context";

/// Core terms that can name attributes (the structural keywords — type,
/// value, object, observedAt… — are kept as they are, never expanded).
const CORE_ATTRIBUTES: &[&str] = &[
    "location",
    "observationSpace",
    "operationSpace",
    "createdAt",
    "modifiedAt",
    "observedAt",
    "unitCode",
    "datasetId",
];

/// Whether `url` names a published version of the core context (built in).
/// Only exact names count: `…/ngsi-ld-core-context.jsonld` and
/// `…/ngsi-ld-core-context-v1.N.jsonld`; any other name under the ETSI path
/// is fetched like a user context (and is `LdContextNotAvailable` offline).
pub fn is_core(url: &str) -> bool {
    let Some(name) = url
        .strip_prefix("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")
        .or_else(|| url.strip_prefix("http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context"))
    else {
        return false;
    };
    if name == ".jsonld" {
        return true;
    }
    name.strip_prefix("-v1.")
        .and_then(|n| n.strip_suffix(".jsonld"))
        .is_some_and(|minor| {
            !minor.is_empty() && minor.len() <= 2 && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A resolved context: term definitions, the vocabulary, and what to send
/// back to the client (the context as it was given).
#[derive(Debug, Clone, Default)]
pub struct Context {
    terms: HashMap<String, String>,
    vocab: Option<String>,
    /// The @context as given (a URL, an array, an object); `None` for the
    /// core context alone.
    pub given: Option<Value>,
}

impl Context {
    /// The core context alone.
    pub fn core() -> Self {
        Self::default()
    }

    fn define(&mut self, defs: &serde_json::Map<String, Value>) {
        for (k, v) in defs {
            if k == "@vocab" {
                self.vocab = v.as_str().map(String::from);
                continue;
            }
            if k.starts_with('@') {
                continue;
            }
            let iri = match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("@id").and_then(Value::as_str).map(String::from),
                _ => None,
            };
            match iri {
                Some(i) if !i.starts_with('@') => {
                    self.terms.insert(k.clone(), i);
                }
                _ => {
                    self.terms.remove(k);
                }
            }
        }
    }

    fn resolve_compact(&self, iri: &str) -> String {
        if let Some((prefix, suffix)) = iri.split_once(':')
            && !suffix.starts_with("//")
            && let Some(base) = self.terms.get(prefix)
        {
            return format!("{base}{suffix}");
        }
        if let Some(suffix) = iri.strip_prefix("ngsi-ld:") {
            return format!("{NGSI_LD}{suffix}");
        }
        iri.to_string()
    }

    /// Expands a term (type or attribute name) to an IRI.
    pub fn expand(&self, term: &str) -> String {
        if CORE_ATTRIBUTES.contains(&term) {
            return format!("{NGSI_LD}{term}");
        }
        if let Some(iri) = self.terms.get(term) {
            return self.resolve_compact(iri);
        }
        if term.contains(':') {
            return self.resolve_compact(term);
        }
        format!("{}{term}", self.vocab.as_deref().unwrap_or(DEFAULT_VOCAB))
    }

    /// Compacts an IRI back to the shortest term this context gives it.
    pub fn compact(&self, iri: &str) -> String {
        if let Some(rest) = iri.strip_prefix(NGSI_LD)
            && CORE_ATTRIBUTES.contains(&rest)
        {
            return rest.to_string();
        }
        let mut best: Option<&str> = None;
        for (term, def) in &self.terms {
            if self.resolve_compact(def) == iri && best.is_none_or(|b| term.len() < b.len()) {
                best = Some(term);
            }
        }
        if let Some(b) = best {
            return b.to_string();
        }
        // A user @vocab replaces the core one (the default context).
        let vocab = self.vocab.as_deref().unwrap_or(DEFAULT_VOCAB);
        if let Some(rest) = iri.strip_prefix(vocab)
            && !rest.is_empty()
            && !rest.contains(['/', '#', ':'])
            && !self.terms.contains_key(rest)
        {
            return rest.to_string();
        }
        for (term, def) in &self.terms {
            let base = self.resolve_compact(def);
            if (base.ends_with('/') || base.ends_with('#'))
                && let Some(rest) = iri.strip_prefix(base.as_str())
                && !rest.is_empty()
            {
                return format!("{term}:{rest}");
            }
        }
        // The core context's own prefix.
        if let Some(rest) = iri.strip_prefix(NGSI_LD)
            && !rest.is_empty()
            && !self.terms.contains_key("ngsi-ld")
        {
            return format!("ngsi-ld:{rest}");
        }
        iri.to_string()
    }

    /// The Link header value naming this context (the core one when none was given,
    /// or when it was given inline and cannot be linked).
    pub fn link(&self) -> String {
        let url = match &self.given {
            Some(Value::String(u)) => u.as_str(),
            _ => CORE_CONTEXT_URL,
        };
        format!("<{url}>; rel=\"{CONTEXT_REL}\"; type=\"application/ld+json\"")
    }

    /// The value of `@context` for an `application/ld+json` answer.
    pub fn body_value(&self) -> Value {
        match &self.given {
            Some(v) => v.clone(),
            None => Value::String(CORE_CONTEXT_URL.into()),
        }
    }
}

/// Most context documents a single request may pull in (nested URLs).
const MAX_CONTEXT_DOCS: usize = 32;

/// How a context came to be known (the `kind` of `/jsonldContexts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Posted to `/jsonldContexts` and served by this server.
    Hosted,
    /// Fetched from its URL (or read from `context_dir`) and cached.
    Cached,
}

impl Kind {
    /// The name NGSI-LD uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hosted => "Hosted",
            Self::Cached => "Cached",
        }
    }
}

/// A context this server keeps.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The URL clients use for it.
    pub url: String,
    /// Its id under `/jsonldContexts`.
    pub local_id: String,
    /// Hosted or cached.
    pub kind: Kind,
    /// The document (`{"@context": …}`).
    pub doc: Arc<Value>,
    /// When it was added.
    pub created: Timestamp,
    /// How often requests used it.
    pub hits: u64,
    /// When a request last used it.
    pub last_usage: Option<Timestamp>,
}

/// Cached documents by URL with their insertion order (oldest first), and
/// hosted ones by local id.
#[derive(Debug, Default)]
struct Cache {
    cached: HashMap<String, Entry>,
    order: VecDeque<String>,
    hosted: BTreeMap<String, Entry>,
    next_id: u64,
}

/// The path under which hosted contexts are served.
pub const HOSTED_PATH: &str = "/ngsi-ld/v1/jsonldContexts/";

/// Where user contexts come from, and the cache of those already fetched.
#[derive(Debug)]
pub struct Contexts {
    client: reqwest::Client,
    dir: Option<PathBuf>,
    capacity: usize,
    cache: Mutex<Cache>,
    clock: Arc<dyn Clock>,
}

impl Contexts {
    /// A resolver reading `dir` first (files laid out as `<host>/<path>` of
    /// their URL), then fetching with `timeout`; at most `capacity` fetched
    /// documents are cached.
    pub fn new(
        dir: Option<PathBuf>,
        timeout: Duration,
        capacity: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            client,
            dir,
            capacity: capacity.max(1),
            cache: Mutex::new(Cache::default()),
            clock,
        }
    }

    /// Resolves the @context of a request (URL, array or object).
    pub async fn resolve(&self, given: Option<Value>) -> Result<Context, NgsiError> {
        let mut ctx = Context::core();
        let Some(given) = given else {
            return Ok(ctx);
        };
        let mut stack: Vec<Value> = vec![given.clone()];
        let mut fetched = 0usize;
        while let Some(item) = stack.pop() {
            match item {
                Value::Null => {}
                Value::String(url) if is_core(&url) => {}
                Value::String(url) => {
                    fetched += 1;
                    if fetched > MAX_CONTEXT_DOCS {
                        return Err(NgsiError::LdContextNotAvailable(format!(
                            "@context pulls in more than {MAX_CONTEXT_DOCS} documents"
                        )));
                    }
                    let doc = self.document(&url).await?;
                    match doc.get("@context") {
                        Some(inner) => stack.push(inner.clone()),
                        None => {
                            return Err(NgsiError::LdContextNotAvailable(format!(
                                "{url} is not a JSON-LD context (no @context member)"
                            )));
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.into_iter().rev()),
                Value::Object(defs) => ctx.define(&defs),
                other => {
                    return Err(NgsiError::bad(
                        "@context",
                        format!("must be a URL, an object or an array of them, not {other}"),
                    ));
                }
            }
        }
        ctx.given = Some(given);
        Ok(ctx)
    }

    fn cached(&self, url: &str) -> Option<Arc<Value>> {
        let now = self.clock.now();
        let mut c = self.cache.lock().ok()?;
        // A hosted context is named by its URL, its path, or its bare local id.
        let hosted_id = Some(
            url.rsplit_once("/jsonldContexts/")
                .map_or(url, |(_, id)| id)
                .to_string(),
        );
        let entry = match hosted_id {
            Some(id) if c.hosted.contains_key(&id) => c.hosted.get_mut(&id),
            _ => c.cached.get_mut(url),
        }?;
        entry.hits += 1;
        entry.last_usage = Some(now);
        Some(entry.doc.clone())
    }

    fn remember(&self, url: &str, doc: Arc<Value>) {
        let now = self.clock.now();
        if let Ok(mut c) = self.cache.lock() {
            let c = &mut *c;
            if !c.cached.contains_key(url) {
                c.next_id += 1;
                let entry = Entry {
                    url: url.to_string(),
                    local_id: format!("cached-{}", c.next_id),
                    kind: Kind::Cached,
                    doc,
                    created: now,
                    hits: 1,
                    last_usage: Some(now),
                };
                c.cached.insert(url.to_string(), entry);
                c.order.push_back(url.to_string());
            }
            while c.cached.len() > self.capacity {
                match c.order.pop_front() {
                    Some(old) => {
                        c.cached.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    /// Hosts a context document; returns its local id.
    pub fn host(&self, doc: Value) -> Option<String> {
        let now = self.clock.now();
        let mut c = self.cache.lock().ok()?;
        c.next_id += 1;
        let local_id = format!("hosted-{}-{}", now.timestamp_micros(), c.next_id);
        let entry = Entry {
            url: format!("{HOSTED_PATH}{local_id}"),
            local_id: local_id.clone(),
            kind: Kind::Hosted,
            doc: Arc::new(doc),
            created: now,
            hits: 0,
            last_usage: None,
        };
        c.hosted.insert(local_id.clone(), entry);
        Some(local_id)
    }

    /// Every context kept: hosted ones, then cached ones.
    pub fn entries(&self) -> Vec<Entry> {
        match self.cache.lock() {
            Ok(c) => c
                .hosted
                .values()
                .cloned()
                .chain(c.order.iter().filter_map(|u| c.cached.get(u).cloned()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The context with this local id or URL.
    pub fn entry(&self, id: &str) -> Option<Entry> {
        let c = self.cache.lock().ok()?;
        let local = id.rsplit_once("/jsonldContexts/").map_or(id, |(_, l)| l);
        c.hosted
            .get(local)
            .or_else(|| c.cached.get(id))
            .or_else(|| c.cached.values().find(|e| e.local_id == id))
            .cloned()
    }

    /// Forgets a context; whether it was known.
    pub fn forget(&self, e: &Entry) -> bool {
        let Ok(mut c) = self.cache.lock() else {
            return false;
        };
        match e.kind {
            Kind::Hosted => c.hosted.remove(&e.local_id).is_some(),
            Kind::Cached => {
                c.order.retain(|u| *u != e.url);
                c.cached.remove(&e.url).is_some()
            }
        }
    }

    /// Fetches a cached context again (after [`Contexts::forget`]).
    pub async fn reload(&self, url: &str) -> Result<(), NgsiError> {
        self.document(url).await.map(|_| ())
    }

    async fn document(&self, url: &str) -> Result<Arc<Value>, NgsiError> {
        if let Some(d) = self.cached(url) {
            return Ok(d);
        }
        if let Some(dir) = &self.dir
            && let Some(path) = local_path(dir, url)
            && let Ok(bytes) = tokio::fs::read(&path).await
        {
            let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
                NgsiError::LdContextNotAvailable(format!(
                    "the local copy of {url} is not JSON: {e}"
                ))
            })?;
            let doc = Arc::new(doc);
            self.remember(url, doc.clone());
            return Ok(doc);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(NgsiError::LdContextNotAvailable(format!(
                "@context '{url}' is not an http(s) URL"
            )));
        }
        let unavailable = |why: String| {
            NgsiError::LdContextNotAvailable(format!("cannot fetch @context {url}: {why}"))
        };
        let resp = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/ld+json, application/json;q=0.9",
            )
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let doc: Value = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("not JSON ({e})")))?;
        let doc = Arc::new(doc);
        self.remember(url, doc.clone());
        Ok(doc)
    }
}

/// `<dir>/<host>/<path>` for `url`, refusing anything that could leave `dir`.
fn local_path(dir: &Path, url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.split(['?', '#']).next()?;
    let rel = Path::new(rest);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clock() -> Arc<dyn Clock> {
        Arc::new(panorama_core::ManualClock::new(
            chrono::DateTime::UNIX_EPOCH,
        ))
    }

    #[tokio::test]
    async fn terms_expand_and_compact_back() {
        let c = Contexts::new(None, Duration::from_secs(1), 4, clock());
        let ctx = c
            .resolve(Some(json!({
                "Building": "https://ontology.example/Building",
                "ex": "https://ontology.example/",
                "name": {"@id": "ex:name"}
            })))
            .await
            .unwrap();
        assert_eq!(ctx.expand("Building"), "https://ontology.example/Building");
        assert_eq!(ctx.expand("name"), "https://ontology.example/name");
        assert_eq!(ctx.expand("ex:height"), "https://ontology.example/height");
        assert_eq!(ctx.expand("other"), format!("{DEFAULT_VOCAB}other"));
        assert_eq!(ctx.expand("location"), format!("{NGSI_LD}location"));
        assert_eq!(ctx.compact("https://ontology.example/Building"), "Building");
        assert_eq!(ctx.compact("https://ontology.example/height"), "ex:height");
        assert_eq!(ctx.compact(&format!("{DEFAULT_VOCAB}other")), "other");
        let own_vocab = c
            .resolve(Some(json!({"@vocab": "https://vocab.example/"})))
            .await
            .unwrap();
        assert_eq!(
            own_vocab.compact(&format!("{DEFAULT_VOCAB}other")),
            "ngsi-ld:default-context/other"
        );
        assert_eq!(
            own_vocab.expand("ngsi-ld:default-context/other"),
            format!("{DEFAULT_VOCAB}other")
        );
        let core = Context::core();
        assert_eq!(
            core.compact("https://ontology.example/Building"),
            "https://ontology.example/Building"
        );
    }

    #[tokio::test]
    async fn core_context_is_never_fetched() {
        // No network and no directory: the core URL must still resolve.
        let c = Contexts::new(None, Duration::from_millis(10), 4, clock());
        let ctx = c.resolve(Some(json!(CORE_CONTEXT_URL))).await.unwrap();
        assert_eq!(ctx.expand("location"), format!("{NGSI_LD}location"));
    }

    #[test]
    fn only_published_core_context_names_are_built_in() {
        assert!(is_core(CORE_CONTEXT_URL));
        assert!(is_core(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
        ));
        assert!(is_core(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
        ));
        assert!(!is_core(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"
        ));
        assert!(!is_core(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.jsonld"
        ));
        assert!(!is_core(
            "https://example.org/ngsi-ld-core-context-v1.6.jsonld"
        ));
    }

    #[tokio::test]
    async fn local_directory_serves_contexts_by_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("example.org/ctx/a.jsonld");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"@context": {"T": "https://t.example/T"}}"#).unwrap();
        let c = Contexts::new(
            Some(dir.path().into()),
            Duration::from_millis(10),
            4,
            clock(),
        );
        let ctx = c
            .resolve(Some(json!([
                "https://example.org/ctx/a.jsonld",
                CORE_CONTEXT_URL
            ])))
            .await
            .unwrap();
        assert_eq!(ctx.expand("T"), "https://t.example/T");
        assert!(local_path(dir.path(), "https://example.org/../etc/passwd").is_none());
    }

    #[tokio::test]
    async fn bad_context_values_name_the_field() {
        let c = Contexts::new(None, Duration::from_millis(10), 4, clock());
        let e = c.resolve(Some(json!(42))).await.unwrap_err();
        assert_eq!(e.field(), Some("@context"));
        let e = c
            .resolve(Some(json!("ftp://x.example/c")))
            .await
            .unwrap_err();
        assert!(matches!(e, NgsiError::LdContextNotAvailable(_)));
    }
}
