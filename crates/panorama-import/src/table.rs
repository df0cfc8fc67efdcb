//! Reading a file as a table: a header row, then rows of cells, each with
//! the row number the user sees in a spreadsheet (the header is row 1 when
//! the file starts with it). CSV is parsed as it is read; an XLSX sheet is
//! decompressed by calamine first.

use crate::{FileFormat, RowError};
use calamine::{Data, Reader, Xlsx};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;

/// One cell as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Nothing in it (or only spaces).
    Empty,
    /// Text, trimmed.
    Text(&'a str),
    /// A number (XLSX only; CSV numbers arrive as text).
    Number(f64),
    /// A boolean (XLSX only).
    Bool(bool),
    /// A date cell (XLSX only).
    Date(chrono::NaiveDateTime),
    /// An error value such as `#DIV/0!`, or a formula with no saved result.
    Error(String),
}

impl Cell<'_> {
    /// The cell as text, the way a code or label would be typed: whole
    /// numbers without a decimal point, dates as `YYYY-MM-DD`.
    pub(crate) fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Empty | Cell::Error(_) => None,
            Cell::Text(s) => Some(Cow::Borrowed(s)),
            Cell::Number(n) => Some(Cow::Owned(number_text(*n))),
            Cell::Bool(b) => Some(Cow::Owned(b.to_string())),
            Cell::Date(d) => Some(Cow::Owned(d.format("%Y-%m-%d").to_string())),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

/// Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA.
pub(crate) fn column_letter(mut col: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + u8::try_from(col % 26).unwrap_or(0));
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A parsed row handed to a visitor: its number and its cells, one per
/// header column (missing trailing cells are empty).
pub(crate) struct Row<'r, 'a> {
    /// Row number as shown by a spreadsheet.
    pub number: u64,
    /// Cells by header column.
    pub cells: &'r [Cell<'a>],
    /// Spreadsheet column letter of each header column.
    pub letters: &'r [String],
}

impl Row<'_, '_> {
    /// `D5`-style reference of a cell of this row.
    pub(crate) fn cell_ref(&self, col: usize) -> String {
        format!(
            "{}{}",
            self.letters.get(col).map_or("?", String::as_str),
            self.number
        )
    }
}

/// What reading the whole file found besides rows.
#[derive(Debug, Default)]
pub(crate) struct ReadSummary {
    /// Rows with no content, skipped.
    pub empty_rows: u64,
    /// Notes for the report (formula cells taken at their saved value…).
    pub warnings: Vec<String>,
    /// Row-level problems found while reading (extra cells, formulas without a value).
    pub errors: Vec<RowError>,
}

/// A file ready to be read: its header and a way to walk its rows.
pub(crate) struct Table<'a> {
    /// Header texts as written in the file.
    pub header: Vec<String>,
    /// Spreadsheet column letter of each header column.
    pub letters: Vec<String>,
    /// Number of the header row.
    pub header_row: u64,
    /// Data rows, roughly (for progress); exact for XLSX.
    pub rows_hint: u64,
    /// Whether numbers typed as text may use a decimal comma (a `;`- or
    /// tab-separated CSV, as a Vietnamese-locale Excel writes).
    pub decimal_comma: bool,
    body: Body<'a>,
}

enum Body<'a> {
    Csv {
        reader: csv::Reader<&'a [u8]>,
        text: &'a [u8],
        header_newlines: u64,
    },
    Xlsx(Box<XlsxSheet>),
}

struct XlsxSheet {
    name: String,
    range: calamine::Range<Data>,
    /// Formulas by absolute (row, col), 0-based.
    formulas: HashMap<(u32, u32), String>,
    /// Index (within `range`) of the header row.
    header_index: usize,
    /// Absolute column of each header column.
    columns: Vec<u32>,
}

/// Makes CSV bytes UTF-8: strips a UTF-8 BOM, decodes UTF-16 with a BOM,
/// and refuses anything else that is not UTF-8 (Windows-1258, TCVN3…),
/// since those cannot be told apart reliably.
pub(crate) fn decode_csv(bytes: &[u8]) -> Result<Cow<'_, [u8]>, RowError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return check_utf8(rest).map(Cow::Borrowed);
    }
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes)
        && enc != encoding_rs::UTF_8
    {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            return Err(RowError::file(format!(
                "the file starts as {} but contains bytes that are not valid {}; save it as CSV UTF-8",
                enc.name(),
                enc.name()
            )));
        }
        return Ok(Cow::Owned(text.into_owned().into_bytes()));
    }
    check_utf8(bytes).map(Cow::Borrowed)
}

fn check_utf8(bytes: &[u8]) -> Result<&[u8], RowError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            let byte = bytes.get(at).copied().unwrap_or(0);
            Err(RowError {
                row: Some(line as u64),
                column: None,
                cell: None,
                reason: format!(
                    "the file is not UTF-8 (byte 0x{byte:02X} on line {line}); it was probably saved \
                     in Windows-1258 or another legacy encoding. In Excel use 'Save As → CSV UTF-8 \
                     (Comma delimited)', in LibreOffice tick 'Edit filter settings' and choose Unicode (UTF-8)"
                ),
            })
        }
    }
}

/// The delimiter of a CSV file, guessed from its first line: the most
/// frequent of `,`, `;` and tab outside quotes (Excel in a Vietnamese
/// locale writes `;`).
pub(crate) fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in bytes.iter().take(64 * 1024) {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

impl<'a> Table<'a> {
    /// Opens CSV text (already UTF-8, see [`decode_csv`]).
    pub(crate) fn csv(text: &'a [u8]) -> Result<Self, RowError> {
        let delimiter = sniff_delimiter(text);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text);
        let mut rec = csv::StringRecord::new();
        // The header is the first record; blank lines before it are skipped by csv.
        let found = reader
            .read_record(&mut rec)
            .map_err(|e| RowError::file(format!("cannot read the CSV header: {e}")))?;
        if !found || rec.iter().all(|f| f.trim().is_empty()) {
            return Err(RowError::file(
                "the file is empty: it has no header row".to_string(),
            ));
        }
        let header_row = rec.position().map_or(1, |p| p.line());
        let header: Vec<String> = rec.iter().map(|h| h.trim().to_string()).collect();
        let letters = (0..header.len()).map(column_letter).collect();
        let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
        Ok(Self {
            header,
            letters,
            header_row,
            decimal_comma: delimiter != b',',
            rows_hint: lines.saturating_sub(header_row.saturating_sub(1)).max(1) - 1,
            body: Body::Csv {
                header_newlines: newlines(rec.as_slice()),
                reader,
                text,
            },
        })
    }

    /// Opens the first worksheet of an XLSX workbook.
    pub(crate) fn xlsx(bytes: &[u8], summary: &mut ReadSummary) -> Result<Self, RowError> {
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| {
            RowError::file(format!(
                "the file is not a readable XLSX workbook ({e}); save it from Excel or LibreOffice as .xlsx"
            ))
        })?;
        let names = book.sheet_names();
        let Some(name) = names.first().cloned() else {
            return Err(RowError::file("the workbook has no worksheet"));
        };
        if names.len() > 1 {
            summary.warnings.push(format!(
                "only the first sheet '{name}' was read; the workbook also has {}",
                names[1..]
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let range = book
            .worksheet_range(&name)
            .map_err(|e| RowError::file(format!("cannot read the sheet '{name}': {e}")))?;
        let formulas_range = book.worksheet_formula(&name).map_err(|e| {
            RowError::file(format!("cannot read the formulas of sheet '{name}': {e}"))
        })?;
        let mut formulas = HashMap::new();
        if let Some((r0, c0)) = formulas_range.start() {
            for (r, c, f) in formulas_range.used_cells() {
                if !f.is_empty() {
                    let (Ok(r), Ok(c)) = (u32::try_from(r), u32::try_from(c)) else {
                        continue;
                    };
                    formulas.insert((r0 + r, c0 + c), f.clone());
                }
            }
        }
        let Some((r0, c0)) = range.start() else {
            return Err(RowError::file(format!("the sheet '{name}' is empty")));
        };
        let Some(header_index) = range
            .rows()
            .position(|row| row.iter().any(|d| !data_is_blank(d)))
        else {
            return Err(RowError::file(format!("the sheet '{name}' is empty")));
        };
        let header_cells = range.rows().nth(header_index).unwrap_or(&[]);
        // Trailing empty header cells are not columns.
        let width = header_cells
            .iter()
            .rposition(|d| !data_is_blank(d))
            .map_or(0, |i| i + 1);
        let header: Vec<String> = header_cells[..width]
            .iter()
            .map(|d| match d {
                Data::String(s) => s.trim().to_string(),
                Data::Empty => String::new(),
                other => other.to_string().trim().to_string(),
            })
            .collect();
        let columns: Vec<u32> = (0..width)
            .map(|i| c0 + u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let letters = columns.iter().map(|c| column_letter(*c as usize)).collect();
        let header_row = u64::from(r0) + header_index as u64 + 1;
        Ok(Self {
            header,
            letters,
            header_row,
            decimal_comma: false,
            rows_hint: (range.height() - header_index - 1) as u64,
            body: Body::Xlsx(Box::new(XlsxSheet {
                name,
                range,
                formulas,
                header_index,
                columns,
            })),
        })
    }

    /// Walks every data row in order; empty rows are counted, not visited.
    /// Stops early when `visit` returns false.
    pub(crate) fn for_each_row(
        &mut self,
        summary: &mut ReadSummary,
        mut visit: impl FnMut(&Row<'_, '_>) -> bool,
    ) -> Result<(), RowError> {
        let width = self.header.len();
        match &mut self.body {
            Body::Csv {
                reader,
                text,
                header_newlines,
            } => {
                let mut rec = csv::StringRecord::new();
                let mut row = self.header_row;
                // The line the next record starts on if no blank line comes first.
                let mut expected_line = self.header_row + *header_newlines + 1;
                loop {
                    match reader.read_record(&mut rec) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            return Err(RowError::file(format!("cannot read the CSV: {e}")));
                        }
                    }
                    // A record's position is where reading began, before
                    // any blank lines csv skipped: step over them.
                    let line = rec.position().map_or(expected_line, |p| {
                        let start = usize::try_from(p.byte()).unwrap_or(usize::MAX);
                        let blank = text
                            .get(start..)
                            .unwrap_or_default()
                            .iter()
                            .take_while(|b| matches!(b, b'\r' | b'\n'))
                            .filter(|b| **b == b'\n')
                            .count();
                        p.line() + blank as u64
                    });
                    // csv skips blank lines; a spreadsheet shows them as rows.
                    let skipped = line.saturating_sub(expected_line);
                    summary.empty_rows += skipped;
                    row += 1 + skipped;
                    expected_line = line + newlines(rec.as_slice()) + 1;
                    // A fresh vector per row: its cells borrow this record.
                    let mut cells: Vec<Cell<'_>> = Vec::with_capacity(width);
                    for f in rec.iter().take(width) {
                        let t = f.trim();
                        cells.push(if t.is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(t)
                        });
                    }
                    if cells.iter().all(Cell::is_empty)
                        && rec.iter().skip(width).all(|f| f.trim().is_empty())
                    {
                        summary.empty_rows += 1;
                        continue;
                    }
                    cells.resize(width, Cell::Empty);
                    if let Some(extra) = rec.iter().skip(width).position(|f| !f.trim().is_empty()) {
                        summary.errors.push(RowError {
                            row: Some(row),
                            column: None,
                            cell: Some(format!("{}{row}", column_letter(width + extra))),
                            reason: format!(
                                "the row has {} cells but the header only {width} columns; \
                                 a decimal comma or an unquoted delimiter inside a value splits cells",
                                rec.len()
                            ),
                        });
                        continue;
                    }
                    let r = Row {
                        number: row,
                        cells: &cells,
                        letters: &self.letters,
                    };
                    if !visit(&r) {
                        break;
                    }
                }
            }
            Body::Xlsx(sheet) => {
                let (r0, c0) = sheet.range.start().unwrap_or((0, 0));
                let mut formula_cells = 0u64;
                let mut examples = Vec::new();
                let mut cells: Vec<Cell<'_>> = Vec::with_capacity(width);
                let mut errors = Vec::new();
                for (i, data) in sheet.range.rows().enumerate().skip(sheet.header_index + 1) {
                    let abs_row = r0 + u32::try_from(i).unwrap_or(u32::MAX);
                    let number = u64::from(abs_row) + 1;
                    cells.clear();
                    for &col in &sheet.columns {
                        let d = data.get((col - c0) as usize).unwrap_or(&Data::Empty);
                        let formula = sheet.formulas.get(&(abs_row, col));
                        let mut cell = data_cell(d);
                        if let Some(f) = formula {
                            formula_cells += 1;
                            if examples.len() < 5 {
                                examples.push(format!(
                                    "{}{number} (={f})",
                                    column_letter(col as usize)
                                ));
                            }
                            if cell.is_empty() {
                                cell = Cell::Error(format!(
                                    "the formula ={f} has no saved result; open the file in Excel or LibreOffice and save it again, or paste values"
                                ));
                            }
                        }
                        cells.push(cell);
                    }
                    if cells.iter().all(Cell::is_empty) {
                        summary.empty_rows += 1;
                        continue;
                    }
                    for (k, c) in cells.iter().enumerate() {
                        if let Cell::Error(reason) = c {
                            errors.push(RowError {
                                row: Some(number),
                                column: self.header.get(k).cloned(),
                                cell: Some(format!("{}{number}", self.letters[k])),
                                reason: reason.clone(),
                            });
                        }
                    }
                    if errors.last().is_some_and(|e| e.row == Some(number)) {
                        continue;
                    }
                    let r = Row {
                        number,
                        cells: &cells,
                        letters: &self.letters,
                    };
                    if !visit(&r) {
                        break;
                    }
                }
                summary.errors.extend(errors);
                if formula_cells > 0 {
                    summary.warnings.push(format!(
                        "sheet '{}': {formula_cells} cells hold formulas; their saved results were imported, \
                         as last calculated by the program that saved the file (e.g. {})",
                        sheet.name,
                        examples.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

fn newlines(s: &str) -> u64 {
    s.bytes().filter(|b| *b == b'\n').count() as u64
}

fn data_is_blank(d: &Data) -> bool {
    match d {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn data_cell(d: &Data) -> Cell<'_> {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => {
            let t = s.trim();
            if t.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(t)
            }
        }
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(d) if dt.is_datetime() => Cell::Date(d),
            _ => Cell::Number(dt.as_f64()),
        },
        Data::Error(e) => Cell::Error(format!("the cell holds the error {e}")),
    }
}

/// Whether the bytes look like an XLSX (a ZIP archive).
pub fn looks_like_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The format of a file from its bytes (for callers with no content type).
pub fn sniff_format(bytes: &[u8]) -> FileFormat {
    if looks_like_xlsx(bytes) {
        FileFormat::Xlsx
    } else {
        FileFormat::Csv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a;x\",b\n"), b',');
    }

    #[test]
    fn utf8_bom_is_stripped_and_legacy_encodings_refused() {
        assert_eq!(decode_csv(b"\xEF\xBB\xBFa,b").unwrap().as_ref(), b"a,b");
        // "Hà Nội" in Windows-1258 is not UTF-8.
        let e = decode_csv(b"name\nH\xe0 N\xf4\xf2i\n").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(e.reason.contains("not UTF-8"), "{}", e.reason);
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a,b".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_csv(&utf16).unwrap().as_ref(), b"a,b");
    }
}
