//! Makes sure `web/dist` is built and up to date, then generates the table of
//! embedded files (`$OUT_DIR/assets.rs`): each file's bytes via
//! `include_bytes!`, with its precompressed `.gz`/`.br` twins (written by the
//! Vite build), content type and ETag decided here, once.
//!
//! `PANORAMA_WEB_SKIP=1` skips npm: an existing `web/dist` is embedded as it
//! is, otherwise a one-page "UI not built" notice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Inputs of the web build: a change to any of them rebuilds `web/dist`.
const SOURCES: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "svelte.config.js",
    "tsconfig.json",
];

const NOTICE: &str = "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Panorama</title></head>\
<body style=\"font-family:system-ui,sans-serif;background:#0b1220;color:#e8eef9;display:grid;place-items:center;min-height:90vh\">\
<main><h1>Panorama</h1><p>Giao diện web chưa được xây dựng trong bản này (PANORAMA_WEB_SKIP=1).</p>\
<p>The web UI was not built into this binary (PANORAMA_WEB_SKIP=1). Build it with Node.js: \
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then rebuild <code>panorama</code>.</p>\
<p>API: <a style=\"color:#56b4e9\" href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a></p></main></body></html>\n";

fn main() {
    if let Err(e) = run() {
        eprintln!("\nerror: panorama-web: {e}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=PANORAMA_WEB_SKIP");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let web = manifest.join("..").join("..").join("web");
    let web = web.canonicalize().unwrap_or(web);
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", web.join(s).display());
    }
    let dist = web.join("dist");
    let skip = std::env::var("PANORAMA_WEB_SKIP")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        if dist.join("index.html").is_file() {
            println!(
                "cargo:warning=PANORAMA_WEB_SKIP is set: embedding web/dist as it is, without rebuilding it"
            );
        }
    } else if stale(&web, &dist) {
        build(&web)?;
    } else {
        // Built outside cargo (npm run build): re-embed when it is rebuilt.
        // Not watched when this run built it, or every build would run again.
        println!(
            "cargo:rerun-if-changed={}",
            dist.join("index.html").display()
        );
    }
    let code = if dist.join("index.html").is_file() {
        table(&dist)?
    } else {
        let notice = out.join("notice.html");
        std::fs::write(&notice, NOTICE)
            .map_err(|e| format!("cannot write {}: {e}", notice.display()))?;
        format!(
            "&[Asset {{ path: \"/index.html\", mime: \"text/html; charset=utf-8\", body: include_bytes!({:?}), gzip: None, brotli: None, etag: \"\\\"notice\\\"\" }}]\n",
            notice.display().to_string()
        )
    };
    let target = out.join("assets.rs");
    if std::fs::read_to_string(&target).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&target, code)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    Ok(())
}

fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        std::fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|e| newest(&e.path()))
            .max()
    } else {
        meta.modified().ok()
    }
}

/// Whether `dist/index.html` is missing or older than any source.
fn stale(web: &Path, dist: &Path) -> bool {
    let Some(built) = std::fs::metadata(dist.join("index.html"))
        .and_then(|m| m.modified())
        .ok()
    else {
        return true;
    };
    SOURCES
        .iter()
        .filter_map(|s| newest(&web.join(s)))
        .any(|t| t > built)
}

fn npm(web: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("npm").args(args).current_dir(web).output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "npm was not found, so the web UI cannot be built. Install Node.js 20.19+ with npm, \
             or set PANORAMA_WEB_SKIP=1 to build without the UI (the binary then serves a \"UI not built\" page)"
                .to_string()
        } else {
            format!("cannot run npm {}: {e}", args.join(" "))
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`npm {}` in {} failed ({}):\n{}\n{}\n(set PANORAMA_WEB_SKIP=1 to build without the UI)",
        args.join(" "),
        web.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn build(web: &Path) -> Result<(), String> {
    if !web.join("package.json").is_file() {
        return Err(format!("{} has no package.json", web.display()));
    }
    if !web.join("node_modules").is_dir() {
        npm(web, &["ci", "--no-audit", "--no-fund"])?;
    }
    npm(web, &["run", "build"])
}

fn mime(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "pbf" => "application/x-protobuf",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// FNV-1a, enough to tell versions of a file apart in an ETag.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn table(dist: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    walk(dist, &mut files)?;
    let mut entries = BTreeMap::new();
    for f in &files {
        let name = f.to_string_lossy();
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let rel = f.strip_prefix(dist).map_err(|e| e.to_string())?;
        let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
        let bytes = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let twin = |ext: &str| {
            let p = PathBuf::from(format!("{name}.{ext}"));
            p.is_file()
                .then(|| format!("Some(include_bytes!({:?}))", p.display().to_string()))
        };
        let entry = format!(
            "Asset {{ path: {url:?}, mime: {:?}, body: include_bytes!({:?}), gzip: {}, brotli: {}, etag: \"W/\\\"{:016x}\\\"\" }}",
            mime(&url),
            f.display().to_string(),
            twin("gz").unwrap_or_else(|| "None".into()),
            twin("br").unwrap_or_else(|| "None".into()),
            fnv(&bytes)
        );
        entries.insert(url, entry);
    }
    let mut code = String::from("&[\n");
    for e in entries.values() {
        let _ = writeln!(code, "    {e},");
    }
    code.push_str("]\n");
    Ok(code)
}
