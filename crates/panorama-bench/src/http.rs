//! Posting pre-built request bodies over HTTP with several keep-alive
//! connections, in order, retrying when the server says it is busy.

use anyhow::{Result, bail};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One kind of write request.
#[derive(Debug, Clone)]
pub struct Target {
    /// URL to POST to.
    pub url: String,
    /// Content-Type.
    pub content_type: &'static str,
    /// `Authorization` header, if any.
    pub auth: Option<String>,
}

/// Posts every body with `clients` concurrent writers, handing bodies out in
/// order (so data arrives in time order, at most `clients` batches
/// overlapping); returns the time from the first send to the last answer
/// and the number of busy retries.
pub async fn post_all(
    http: &reqwest::Client,
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    clients: usize,
) -> Result<(Duration, u64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (http, target, bodies, next, retries) = (
            http.clone(),
            target.clone(),
            bodies.clone(),
            next.clone(),
            retries.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut attempts = 0;
                loop {
                    let mut req = http
                        .post(&target.url)
                        .header(reqwest::header::CONTENT_TYPE, target.content_type)
                        .body(body.clone());
                    if let Some(a) = &target.auth {
                        req = req.header(reqwest::header::AUTHORIZATION, a);
                    }
                    let resp = req.send().await?;
                    let status = resp.status();
                    if status.is_success() {
                        // Read the answer so the connection is reused.
                        let _ = resp.bytes().await?;
                        break;
                    }
                    if (status.as_u16() == 503 || status.as_u16() == 429) && attempts < 1000 {
                        attempts += 1;
                        retries.fetch_add(1, Ordering::Relaxed);
                        let _ = resp.bytes().await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    let text = resp.text().await.unwrap_or_default();
                    bail!(
                        "POST {} batch {i} answered {status}: {}",
                        target.url,
                        text.chars().take(500).collect::<String>()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((started.elapsed(), retries.load(Ordering::Relaxed)))
}

/// GETs a URL and returns the body, failing on a non-2xx answer.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    auth: Option<&str>,
) -> Result<Bytes> {
    let mut req = http.get(url).query(query);
    if let Some(a) = auth {
        req = req.header(reqwest::header::AUTHORIZATION, a);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "GET {url} {query:?} answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(500)
                .collect::<String>()
        );
    }
    Ok(body)
}
