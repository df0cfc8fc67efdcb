//! `panorama import`: an agency file (CSV or XLSX) into a stopped server's
//! data dir, with progress on standard error and the report on standard output.

use anyhow::Context;
use clap::{Args, ValueEnum};
use panorama_core::Clock;
use panorama_import::{FileFormat, ImportKind, ImportOptions, ImportReport, Outcome, Progress};
use panorama_ingest::{EventBus, Ingest};
use panorama_store::SharedStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the file holds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Columns: indicator, period, admin_unit, value, [status], [note].
    IndicatorValues,
    /// Columns: id or code, type, name, domain, [admin_unit], [lon, lat], [attributes], others as properties.
    Entities,
}

/// File format; by default from the file's content.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// UTF-8 CSV (`,`, `;` or tab separated).
    Csv,
    /// Excel workbook (first sheet).
    Xlsx,
}

/// Arguments of `panorama import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// The file to import (.csv or .xlsx).
    pub file: PathBuf,
    /// Write the valid rows even when some rows are bad.
    #[arg(long)]
    pub accept_valid: bool,
    /// Check and report only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// File format (default: detected from the content).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Record the values as submitted by this source (default: user 'cli').
    #[arg(long)]
    pub source: Option<String>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the import on an open store; Err when the file was refused or writing failed.
pub async fn run(
    store: SharedStore,
    clock: Arc<dyn Clock>,
    args: &ImportArgs,
) -> anyhow::Result<()> {
    let data = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let format = match args.format {
        Some(FormatArg::Csv) => FileFormat::Csv,
        Some(FormatArg::Xlsx) => FileFormat::Xlsx,
        None => panorama_import::sniff_format(&data),
    };
    let kind = match args.kind {
        KindArg::IndicatorValues => ImportKind::IndicatorValues,
        KindArg::Entities => ImportKind::Entities,
    };
    let submitted_by = match &args.source {
        Some(s) => {
            anyhow::ensure!(
                store.sources().await?.iter().any(|x| &x.id == s),
                "no source '{s}' in this data dir (see `panorama source list`)"
            );
            format!("source:{s}")
        }
        None => "user:cli".to_string(),
    };
    let mut opts = ImportOptions::new(kind, format, submitted_by);
    opts.accept_valid = args.accept_valid;
    opts.dry_run = args.dry_run;
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(16),
        clock.clone(),
        panorama_ingest::IngestOptions::default(),
    );
    let progress = Arc::new(Progress::default());
    let watcher = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let p = progress.view();
                match p.phase {
                    panorama_import::Phase::Writing => {
                        eprintln!("writing: {} of {} rows written", p.written, p.to_write)
                    }
                    panorama_import::Phase::Comparing => {
                        eprintln!("comparing {} valid rows with the store", p.rows_read)
                    }
                    _ => eprintln!("reading: {} of about {} rows", p.rows_read, p.rows_total),
                }
            }
        })
    };
    eprintln!("importing {} ({:?})", args.file.display(), format);
    let started = std::time::Instant::now();
    let report = panorama_import::import(&ingest, clock, data.into(), &opts, progress).await;
    watcher.abort();
    let report = report?;
    ingest.flush_activity().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, started.elapsed());
    }
    match report.outcome {
        Outcome::Written | Outcome::DryRun => Ok(()),
        Outcome::Refused => anyhow::bail!(
            "the file was refused: nothing was written (fix the rows above, or use --accept-valid to write only the valid rows)"
        ),
        Outcome::Failed => anyhow::bail!(
            "{}",
            report.failure.unwrap_or_else(|| "writing failed".into())
        ),
    }
}

fn print_report(r: &ImportReport, took: Duration) {
    let outcome = match r.outcome {
        Outcome::Written => "written",
        Outcome::Refused => "REFUSED",
        Outcome::DryRun => "dry run (nothing written)",
        Outcome::Failed => "FAILED",
    };
    println!(
        "{outcome}: {} rows, {} valid, {} invalid, {} unchanged, {} written, {} empty rows skipped ({:.1} s)",
        r.rows,
        r.valid,
        r.invalid,
        r.unchanged,
        r.written,
        r.empty_rows,
        took.as_secs_f64()
    );
    for w in &r.warnings {
        println!("note: {w}");
    }
    for e in &r.errors {
        let at = match (e.row, &e.cell, &e.column) {
            (Some(row), Some(cell), Some(col)) => format!("row {row}, {cell} ({col})"),
            (Some(row), Some(cell), None) => format!("row {row}, {cell}"),
            (Some(row), None, Some(col)) => format!("row {row} ({col})"),
            (Some(row), None, None) => format!("row {row}"),
            (None, _, _) => "file".to_string(),
        };
        println!("{at}: {}", e.reason);
    }
    if r.errors_omitted > 0 {
        println!("… and {} more problems", r.errors_omitted);
    }
}
