//! Indicator values: checking rows and writing the ones that changed.

use crate::columns::{Columns, VALUE_FIELDS};
use crate::table::{Cell, ReadSummary, Row, Table};
use crate::{Catalog, ImportOptions, ImportReport, Phase, Progress, RowError};
use chrono::Datelike;
use panorama_core::{IndicatorValueInput, Period, Periodicity, ValueStatus};
use panorama_ingest::{Ingest, IngestError};
use panorama_store::IndicatorValueQuery;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;

/// A checked row, kept compact: a million of them fit in tens of MB.
#[derive(Debug, Clone)]
pub(crate) struct ValueRow {
    pub ind: u32,
    pub unit: u32,
    pub period: Period,
    pub value: f64,
    pub status: Option<ValueStatus>,
    pub note: Option<Box<str>>,
}

const INDICATOR: usize = 0;
const PERIOD: usize = 1;
const ADMIN_UNIT: usize = 2;
const VALUE: usize = 3;
const STATUS: usize = 4;
const NOTE: usize = 5;

/// Parses a status in English or Vietnamese.
fn parse_status(s: &str) -> Option<ValueStatus> {
    let n = s.trim().to_lowercase();
    ValueStatus::parse(&n).or(match n.as_str() {
        "sơ bộ" | "so bo" | "ước tính" | "uoc tinh" | "tạm tính" | "tam tinh" => {
            Some(ValueStatus::Provisional)
        }
        "chính thức" | "chinh thuc" => Some(ValueStatus::Final),
        "điều chỉnh" | "dieu chinh" | "sửa đổi" | "sua doi" => Some(ValueStatus::Revised),
        _ => None,
    })
}

/// Parses a number typed as text: a decimal point, no thousands separators;
/// a decimal comma only when the file is `;`- or tab-separated.
pub(crate) fn parse_number(t: &str, decimal_comma: bool) -> Result<f64, String> {
    let advice =
        "write a plain number with a decimal point and no thousands separators, e.g. 1234.5";
    let owned;
    let s = if decimal_comma && t.matches(',').count() == 1 && !t.contains('.') {
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return Err(format!("'{t}' is not a number; {advice}"));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("'{t}' is not a number; {advice}")),
    }
}

/// The period of a date cell (Excel turns `2024-05` into 1 May 2024) in
/// the shape the indicator expects, when the date is the period's first day.
fn period_of_date(d: chrono::NaiveDate, p: Periodicity) -> Period {
    match p {
        Periodicity::Monthly if d.day() == 1 => Period::Month(d.year(), d.month()),
        Periodicity::Quarterly if d.day() == 1 && d.month() % 3 == 1 => {
            Period::Quarter(d.year(), d.month().div_ceil(3))
        }
        Periodicity::Yearly if d.ordinal() == 1 => Period::Year(d.year()),
        _ => Period::Day(d),
    }
}

struct RowCheck<'c> {
    cols: &'c Columns,
    header: &'c [String],
    errs: Vec<RowError>,
}

impl RowCheck<'_> {
    fn err(&mut self, row: &Row<'_, '_>, field: usize, reason: impl Into<String>) {
        let col = self.cols.index[field];
        self.errs.push(RowError {
            row: Some(row.number),
            column: Some(
                col.and_then(|c| self.header.get(c).cloned())
                    .unwrap_or_else(|| VALUE_FIELDS[field].name.to_string()),
            ),
            cell: col.map(|c| row.cell_ref(c)),
            reason: reason.into(),
        });
    }

    fn cell<'r, 'a>(&self, row: &'r Row<'r, 'a>, field: usize) -> &'r Cell<'a> {
        self.cols.index[field]
            .and_then(|c| row.cells.get(c))
            .unwrap_or(&Cell::Empty)
    }
}

/// Checks every row. Returns the valid rows, the number of data rows and
/// the number of bad rows; `Err` for problems of the whole file.
pub(crate) fn check(
    table: &mut Table<'_>,
    catalog: &Catalog,
    summary: &mut ReadSummary,
    progress: &Progress,
) -> Result<(Vec<ValueRow>, u64, u64), Vec<RowError>> {
    let cols = Columns::map(
        &table.header,
        VALUE_FIELDS,
        table.header_row,
        &table.letters,
    )?;
    if !cols.others.is_empty() {
        summary.warnings.push(format!(
            "columns ignored (not part of an indicator-values file): {}",
            cols.others
                .iter()
                .map(|(_, h)| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let decimal_comma = table.decimal_comma;
    let header = table.header.clone();
    let mut rc = RowCheck {
        cols: &cols,
        header: &header,
        errs: Vec::new(),
    };
    let mut rows: Vec<ValueRow> =
        Vec::with_capacity(usize::try_from(table.rows_hint).unwrap_or(0).min(4_000_000));
    // Row number of each valid row, for duplicate reports.
    let mut numbers: Vec<u64> = Vec::with_capacity(rows.capacity());
    let mut seen: HashMap<(u32, u32, Period), usize> = HashMap::with_capacity(rows.capacity());
    let mut duplicated: Vec<usize> = Vec::new();
    let mut n = 0u64;
    let mut bad = 0u64;
    let read_errors_before = summary.errors.len();
    table.for_each_row(summary, |row| {
        n += 1;
        if n.is_multiple_of(65_536) {
            progress.rows_read.store(n, Ordering::Relaxed);
        }
        let before = rc.errs.len();
        let ind = match rc.cell(row, INDICATOR).text() {
            None => {
                rc.err(row, INDICATOR, "the indicator code is missing");
                None
            }
            Some(code) => match catalog.indicator_index.get(code.as_ref()) {
                Some(i) => Some(*i),
                None => {
                    rc.err(row, INDICATOR, format!("unknown indicator '{code}'"));
                    None
                }
            },
        };
        let unit = match rc.cell(row, ADMIN_UNIT).text() {
            None => {
                rc.err(row, ADMIN_UNIT, "the admin unit code is missing");
                None
            }
            Some(code) => match catalog.unit_index.get(code.as_ref()) {
                Some(i) => Some(*i),
                None => {
                    rc.err(row, ADMIN_UNIT, format!("unknown admin unit '{code}'"));
                    None
                }
            },
        };
        let indicator = ind.and_then(|i| catalog.indicators.get(i as usize));
        let period = match rc.cell(row, PERIOD) {
            Cell::Empty => {
                rc.err(row, PERIOD, "the period is missing");
                None
            }
            Cell::Date(d) => Some(match indicator {
                Some(ind) => period_of_date(d.date(), ind.periodicity),
                None => Period::Day(d.date()),
            }),
            c => match c.text().map(|t| Period::parse(&t)) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    rc.err(row, PERIOD, e);
                    None
                }
                None => {
                    rc.err(row, PERIOD, "the period is missing");
                    None
                }
            },
        };
        if let (Some(ind), Some(p)) = (indicator, period)
            && !p.fits(ind.periodicity)
        {
            rc.err(
                row,
                PERIOD,
                format!(
                    "'{p}' does not fit the {} indicator {}; give a period like {}",
                    ind.periodicity.as_str(),
                    ind.code,
                    ind.periodicity.example()
                ),
            );
        }
        if let (Some(u), Some(p)) = (unit.and_then(|u| catalog.units.get(u as usize)), period)
            && !u.is_valid_on(p.start())
        {
            let then = if u.successors.is_empty() {
                String::new()
            } else {
                format!("; its successors are {}", u.successors.join(", "))
            };
            rc.err(
                row,
                ADMIN_UNIT,
                format!("the admin unit {} did not exist in {p}{then}", u.code),
            );
        }
        let value = match rc.cell(row, VALUE) {
            Cell::Number(v) if v.is_finite() => Some(*v),
            Cell::Empty => {
                rc.err(row, VALUE, "the value is missing");
                None
            }
            Cell::Text(t) => match parse_number(t, decimal_comma) {
                Ok(v) => Some(v),
                Err(e) => {
                    rc.err(row, VALUE, e);
                    None
                }
            },
            other => {
                rc.err(
                    row,
                    VALUE,
                    format!(
                        "expected a number, got {}",
                        other.text().unwrap_or_default()
                    ),
                );
                None
            }
        };
        let status = match rc.cell(row, STATUS).text() {
            None => None,
            Some(s) => match parse_status(&s) {
                Some(s) => Some(s),
                None => {
                    rc.err(
                        row,
                        STATUS,
                        format!(
                            "unknown status '{s}': use provisional (sơ bộ), final (chính thức) or revised (điều chỉnh)"
                        ),
                    );
                    None
                }
            },
        };
        let note = rc.cell(row, NOTE).text().map(|n| n.into_owned());
        if let Some(n) = &note
            && n.chars().count() > 2000
        {
            rc.err(row, NOTE, "the note must be at most 2000 characters");
        }
        if rc.errs.len() > before {
            bad += 1;
            return true;
        }
        let (Some(ind), Some(unit), Some(period), Some(value)) = (ind, unit, period, value) else {
            bad += 1;
            return true;
        };
        match seen.entry((ind, unit, period)) {
            Entry::Occupied(first) => {
                let first_row = numbers[*first.get()];
                rc.err(
                    row,
                    PERIOD,
                    format!(
                        "duplicate: row {first_row} already has a value for this indicator, period and admin unit"
                    ),
                );
                duplicated.push(*first.get());
                bad += 1;
            }
            Entry::Vacant(v) => {
                v.insert(rows.len());
                numbers.push(row.number);
                rows.push(ValueRow {
                    ind,
                    unit,
                    period,
                    value,
                    status,
                    note: note.map(String::into_boxed_str),
                });
            }
        }
        true
    })
    .map_err(|e| vec![e])?;
    // Rows refused while reading (extra cells, cell errors) are bad rows too.
    let read_bad = {
        let mut r: Vec<u64> = summary.errors[read_errors_before..]
            .iter()
            .filter_map(|e| e.row)
            .collect();
        r.dedup();
        r.len() as u64
    };
    n += read_bad;
    bad += read_bad;
    // The first of duplicated rows is ambiguous too: which value is right?
    duplicated.sort_unstable();
    duplicated.dedup();
    for &i in duplicated.iter().rev() {
        let number = numbers[i];
        rc.errs.push(RowError {
            row: Some(number),
            column: cols.index[PERIOD].and_then(|c| header.get(c).cloned()),
            cell: None,
            reason:
                "duplicate: a later row has a value for the same indicator, period and admin unit"
                    .into(),
        });
        rows.swap_remove(i);
        numbers.swap_remove(i);
        bad += 1;
    }
    summary.errors.append(&mut rc.errs);
    progress.rows_read.store(n, Ordering::Relaxed);
    Ok((rows, n, bad))
}

/// The current revision of a value, for comparison.
struct Current {
    value: f64,
    status: ValueStatus,
    note: Option<String>,
}

fn unchanged(row: &ValueRow, cur: &Current) -> bool {
    row.value == cur.value
        && row.status.is_none_or(|s| s == cur.status)
        && row.note.as_deref() == cur.note.as_deref()
}

/// Writes the rows that differ from the current revisions, in batches.
pub(crate) async fn write(
    ingest: &Ingest,
    catalog: &Catalog,
    mut rows: Vec<ValueRow>,
    opts: &ImportOptions,
    progress: &Progress,
    report: &mut ImportReport,
) -> Result<(), IngestError> {
    // Compare with what is stored, one indicator at a time.
    rows.sort_unstable_by_key(|r| r.ind);
    let mut keep = vec![true; rows.len()];
    let mut start = 0;
    while start < rows.len() {
        let ind = rows[start].ind;
        let end = start + rows[start..].partition_point(|r| r.ind == ind);
        let code = &catalog.indicators[ind as usize].code;
        let stored = ingest
            .store()
            .indicator_values(&IndicatorValueQuery {
                indicator: Some(code.clone()),
                ..IndicatorValueQuery::default()
            })
            .await?;
        if !stored.is_empty() {
            let mut current: HashMap<(u32, Period), Current> = HashMap::with_capacity(stored.len());
            for v in stored {
                let (Some(&u), Ok(p)) = (
                    catalog.unit_index.get(&v.admin_unit),
                    Period::parse(&v.period),
                ) else {
                    continue;
                };
                current.insert(
                    (u, p),
                    Current {
                        value: v.value,
                        status: v.status,
                        note: v.note,
                    },
                );
            }
            for (k, r) in rows[start..end].iter().enumerate() {
                if current
                    .get(&(r.unit, r.period))
                    .is_some_and(|c| unchanged(r, c))
                {
                    keep[start + k] = false;
                }
            }
        }
        start = end;
    }
    let mut k = keep.into_iter();
    rows.retain(|_| k.next().unwrap_or(true));
    report.unchanged = report.valid - rows.len() as u64;
    progress
        .to_write
        .store(rows.len() as u64, Ordering::Relaxed);
    if opts.dry_run {
        return Ok(());
    }
    progress.set_phase(Phase::Writing);
    for chunk in rows.chunks(opts.batch_size.max(1)) {
        let batch: Vec<IndicatorValueInput> = chunk
            .iter()
            .map(|r| IndicatorValueInput {
                indicator: catalog.indicators[r.ind as usize].code.clone(),
                period: r.period.to_string(),
                admin_unit: catalog.units[r.unit as usize].code.clone(),
                value: r.value,
                status: r.status,
                note: r.note.as_deref().map(str::to_string),
            })
            .collect();
        let n = batch.len() as u64;
        ingest.indicator_values(&opts.submitted_by, batch).await?;
        report.written += n;
        progress.written.fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_typed_as_text() {
        assert_eq!(parse_number("1234.5", false), Ok(1234.5));
        assert_eq!(parse_number("-3", false), Ok(-3.0));
        assert!(parse_number("1,234", false).is_err());
        assert_eq!(parse_number("12,5", true), Ok(12.5));
        assert!(parse_number("1.234,5", true).is_err());
        assert!(parse_number("NaN", false).is_err());
        assert!(parse_number("inf", false).is_err());
        assert!(parse_number("12 tỷ", false).is_err());
    }

    #[test]
    fn statuses_in_both_languages() {
        assert_eq!(parse_status("Chính thức"), Some(ValueStatus::Final));
        assert_eq!(parse_status("provisional"), Some(ValueStatus::Provisional));
        assert_eq!(parse_status("sơ bộ"), Some(ValueStatus::Provisional));
        assert_eq!(parse_status("maybe"), None);
    }

    #[test]
    fn date_cells_become_periods_of_the_indicator() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
        assert_eq!(
            period_of_date(d, Periodicity::Monthly),
            Period::Month(2024, 4)
        );
        assert_eq!(
            period_of_date(d, Periodicity::Quarterly),
            Period::Quarter(2024, 2)
        );
        assert_eq!(period_of_date(d, Periodicity::Daily), Period::Day(d));
        assert_eq!(period_of_date(d, Periodicity::Yearly), Period::Day(d));
    }
}
