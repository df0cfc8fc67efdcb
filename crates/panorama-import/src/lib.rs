//! Agency file imports: CSV and XLSX files of indicator values or entities.
//!
//! An import reads and checks the whole file first and reports every bad
//! row (spreadsheet row number, column, reason). Nothing is written unless
//! every row is valid, or the caller accepts writing only the valid rows.
//! Writes go through [`panorama_ingest::Ingest`] in batches, with the same
//! durability and live events as the HTTP API. Re-importing a file is
//! idempotent: values equal to the current revision and entities equal to
//! the stored ones are counted as unchanged and not written again.
//!
//! The expected columns are documented in `README.md` beside this crate.

mod columns;
mod entities;
pub mod jobs;
mod table;
mod values;

pub use jobs::{JobView, Jobs, JobsError};
pub use table::sniff_format;

use bytes::Bytes;
use panorama_core::{AdminUnit, Clock, Indicator};
use panorama_ingest::Ingest;
use panorama_store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// Indicator values: indicator, period, admin unit, value, status, note.
    IndicatorValues,
    /// Entities: id or code, type, name, domain, admin unit, lon/lat, attributes.
    Entities,
}

impl ImportKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IndicatorValues => "indicator_values",
            Self::Entities => "entities",
        }
    }

    /// Parses `indicator_values` / `indicator-values` or `entities`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "indicator_values" | "indicator-values" => Some(Self::IndicatorValues),
            "entities" => Some(Self::Entities),
            _ => None,
        }
    }
}

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// UTF-8 CSV (with or without BOM; `,`, `;` or tab separated) or UTF-16 with a BOM.
    Csv,
    /// Excel workbook (first sheet).
    Xlsx,
}

/// What to do with a file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What the file holds.
    pub kind: ImportKind,
    /// How it is encoded.
    pub format: FileFormat,
    /// Write the valid rows even when some rows are bad.
    pub accept_valid: bool,
    /// Check and report only; write nothing.
    pub dry_run: bool,
    /// Who submits: `source:<id>` or `user:<name>`.
    pub submitted_by: String,
    /// Rows per write (one durable commit each).
    pub batch_size: usize,
    /// The file's name as the user picked it, to tell jobs apart.
    pub file_name: Option<String>,
}

impl ImportOptions {
    /// Options for `kind` and `format` submitted by `submitted_by`, with
    /// nothing written unless the whole file is valid.
    pub fn new(kind: ImportKind, format: FileFormat, submitted_by: impl Into<String>) -> Self {
        Self {
            kind,
            format,
            accept_valid: false,
            dry_run: false,
            submitted_by: submitted_by.into(),
            batch_size: 20_000,
            file_name: None,
        }
    }
}

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// Row number as a spreadsheet shows it (the header is row 1 when the
    /// file starts with it); absent for problems of the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Column header as written in the file (or the field name when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Cell reference such as `D5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl RowError {
    /// A problem of the whole file.
    pub fn file(reason: impl Into<String>) -> Self {
        Self {
            row: None,
            column: None,
            cell: None,
            reason: reason.into(),
        }
    }
}

/// How an import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The valid rows were written (all rows, unless `accept_valid` let bad ones be skipped).
    Written,
    /// The file has problems and nothing was written.
    Refused,
    /// A dry run: checked, nothing written; the file would be accepted.
    DryRun,
    /// Writing failed part way; `written` rows are stored. Importing the
    /// same file again completes it (rows already stored are unchanged).
    Failed,
}

/// Most errors listed in a report; the rest are counted in `errors_omitted`.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// What the file holds.
    pub kind: ImportKind,
    /// How it was read.
    pub format: FileFormat,
    /// How it ended.
    pub outcome: Outcome,
    /// Data rows read (empty rows not counted).
    pub rows: u64,
    /// Empty rows skipped.
    pub empty_rows: u64,
    /// Rows without a problem.
    pub valid: u64,
    /// Rows with at least one problem.
    pub invalid: u64,
    /// Valid rows equal to what is stored already, so not written again.
    pub unchanged: u64,
    /// Rows written (new values or revisions, created or changed entities).
    pub written: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether valid rows were to be written despite bad ones.
    pub accept_valid: bool,
    /// Every problem, in row order (at most [`MAX_REPORTED_ERRORS`]).
    pub errors: Vec<RowError>,
    /// Problems found but not listed.
    pub errors_omitted: u64,
    /// Things the user should know that are not errors (formula cells, ignored columns…).
    pub warnings: Vec<String>,
    /// Why writing stopped, when `outcome` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Where an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting to start.
    Queued,
    /// Reading and checking rows.
    Reading,
    /// Comparing valid rows with what is stored.
    Comparing,
    /// Writing batches.
    Writing,
    /// Finished.
    Done,
}

/// Progress counters of one import, shared with whoever watches it.
#[derive(Debug, Default)]
pub struct Progress {
    phase: AtomicU8,
    rows_read: AtomicU64,
    rows_total: AtomicU64,
    to_write: AtomicU64,
    written: AtomicU64,
}

/// A snapshot of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressView {
    /// Where the import is.
    pub phase: Phase,
    /// Data rows read so far.
    pub rows_read: u64,
    /// Data rows in the file (an estimate for CSV until it is read).
    pub rows_total: u64,
    /// Rows to write (known once reading and comparing are done).
    pub to_write: u64,
    /// Rows written so far.
    pub written: u64,
}

impl Progress {
    /// A snapshot of the counters.
    pub fn view(&self) -> ProgressView {
        ProgressView {
            phase: match self.phase.load(Ordering::Relaxed) {
                0 => Phase::Queued,
                1 => Phase::Reading,
                2 => Phase::Comparing,
                3 => Phase::Writing,
                _ => Phase::Done,
            },
            rows_read: self.rows_read.load(Ordering::Relaxed),
            rows_total: self.rows_total.load(Ordering::Relaxed),
            to_write: self.to_write.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
        }
    }

    fn set_phase(&self, p: Phase) {
        let n = match p {
            Phase::Queued => 0,
            Phase::Reading => 1,
            Phase::Comparing => 2,
            Phase::Writing => 3,
            Phase::Done => 4,
        };
        self.phase.store(n, Ordering::Relaxed);
    }
}

/// Why an import could not run at all (problems of the file are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the catalogue (indicators, admin units, domains) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checking task failed.
    #[error("the import task failed: {0}")]
    Task(String),
}

/// What a file is checked against: codes known to the store.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub indicators: Vec<Indicator>,
    pub indicator_index: HashMap<String, u32>,
    pub units: Vec<AdminUnit>,
    pub unit_index: HashMap<String, u32>,
    pub domains: HashSet<String>,
}

impl Catalog {
    async fn load(ingest: &Ingest) -> Result<Self, StoreError> {
        let store = ingest.store();
        let indicators = store.indicators(None).await?;
        let units = store.admin_units().await?;
        let domains = store.domains().await?;
        let index = |codes: Vec<String>| {
            codes
                .into_iter()
                .enumerate()
                .map(|(i, c)| (c, u32::try_from(i).unwrap_or(u32::MAX)))
                .collect()
        };
        Ok(Self {
            indicator_index: index(indicators.iter().map(|i| i.code.clone()).collect()),
            unit_index: index(units.iter().map(|u| u.code.clone()).collect()),
            indicators,
            units,
            domains: domains.into_iter().map(|d| d.code).collect(),
        })
    }
}

/// Checked rows of either kind, ready to write.
pub(crate) enum Checked {
    Values(Vec<values::ValueRow>),
    Entities(Vec<entities::EntityRow>),
}

/// What the checking pass produced.
pub(crate) struct CheckResult {
    pub rows: u64,
    pub checked: Checked,
    /// Rows that failed (row numbers, for counting).
    pub invalid_rows: u64,
    pub summary: table::ReadSummary,
    /// Problems of the whole file: nothing can be written.
    pub file_errors: bool,
}

fn check_file(
    data: &[u8],
    opts: &ImportOptions,
    catalog: &Catalog,
    progress: &Progress,
) -> CheckResult {
    let mut summary = table::ReadSummary::default();
    let refused = |e: Vec<RowError>, mut summary: table::ReadSummary| {
        summary.errors.extend(e);
        CheckResult {
            rows: 0,
            checked: match opts.kind {
                ImportKind::IndicatorValues => Checked::Values(Vec::new()),
                ImportKind::Entities => Checked::Entities(Vec::new()),
            },
            invalid_rows: 0,
            summary,
            file_errors: true,
        }
    };
    let decoded;
    let table = match opts.format {
        FileFormat::Csv => {
            if table::looks_like_xlsx(data) {
                return refused(
                    vec![RowError::file(
                        "the file is an XLSX workbook, not CSV; send it as XLSX",
                    )],
                    summary,
                );
            }
            decoded = match table::decode_csv(data) {
                Ok(d) => d,
                Err(e) => return refused(vec![e], summary),
            };
            table::Table::csv(&decoded)
        }
        FileFormat::Xlsx => table::Table::xlsx(data, &mut summary),
    };
    let mut table = match table {
        Ok(t) => t,
        Err(e) => return refused(vec![e], summary),
    };
    progress
        .rows_total
        .store(table.rows_hint, Ordering::Relaxed);
    let result = match opts.kind {
        ImportKind::IndicatorValues => values::check(&mut table, catalog, &mut summary, progress)
            .map(|(rows, n, bad)| (Checked::Values(rows), n, bad)),
        ImportKind::Entities => entities::check(&mut table, catalog, &mut summary, progress)
            .map(|(rows, n, bad)| (Checked::Entities(rows), n, bad)),
    };
    match result {
        Ok((checked, rows, invalid_rows)) => {
            progress.rows_total.store(rows, Ordering::Relaxed);
            CheckResult {
                rows,
                checked,
                invalid_rows,
                summary,
                file_errors: false,
            }
        }
        Err(e) => refused(e, summary),
    }
}

/// Imports a file: checks every row, then (unless refused or a dry run)
/// writes the valid rows that differ from what is stored, in batches
/// through `ingest`. Problems of the file are in the report, not errors.
pub async fn import(
    ingest: &Ingest,
    clock: Arc<dyn Clock>,
    data: Bytes,
    opts: &ImportOptions,
    progress: Arc<Progress>,
) -> Result<ImportReport, ImportError> {
    progress.set_phase(Phase::Reading);
    let catalog = Arc::new(Catalog::load(ingest).await?);
    let checked = {
        let (opts, catalog, progress) = (opts.clone(), catalog.clone(), progress.clone());
        // Parsing a large file is CPU work: keep it off the async workers.
        tokio::task::spawn_blocking(move || check_file(&data, &opts, &catalog, &progress))
            .await
            .map_err(|e| ImportError::Task(e.to_string()))?
    };
    let CheckResult {
        rows,
        checked,
        invalid_rows,
        mut summary,
        file_errors,
    } = checked;
    summary
        .errors
        .sort_by_key(|e| (e.row.unwrap_or(0), e.cell.clone()));
    let total_errors = summary.errors.len();
    let omitted = total_errors.saturating_sub(MAX_REPORTED_ERRORS) as u64;
    summary.errors.truncate(MAX_REPORTED_ERRORS);
    let valid = match &checked {
        Checked::Values(v) => v.len() as u64,
        Checked::Entities(e) => e.len() as u64,
    };
    let mut report = ImportReport {
        kind: opts.kind,
        format: opts.format,
        outcome: Outcome::Refused,
        rows,
        empty_rows: summary.empty_rows,
        valid,
        invalid: invalid_rows,
        unchanged: 0,
        written: 0,
        dry_run: opts.dry_run,
        accept_valid: opts.accept_valid,
        errors: summary.errors,
        errors_omitted: omitted,
        warnings: summary.warnings,
        failure: None,
    };
    let refused = file_errors || (invalid_rows > 0 && !opts.accept_valid);
    if refused {
        progress.set_phase(Phase::Done);
        return Ok(report);
    }
    progress.set_phase(Phase::Comparing);
    let written = match checked {
        Checked::Values(rows) => {
            values::write(ingest, &catalog, rows, opts, &progress, &mut report).await
        }
        Checked::Entities(rows) => {
            entities::write(ingest, clock, rows, opts, &progress, &mut report).await
        }
    };
    report.outcome = match written {
        Ok(()) if opts.dry_run => Outcome::DryRun,
        Ok(()) => Outcome::Written,
        Err(e) => {
            report.failure = Some(format!(
                "{e}; {} rows were written before the failure, import the same file again to complete it",
                report.written
            ));
            Outcome::Failed
        }
    };
    progress.set_phase(Phase::Done);
    Ok(report)
}
