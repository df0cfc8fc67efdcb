//! Entities: checking rows and writing the ones that are new or changed.

use crate::columns::{Columns, ENTITY_FIELDS};
use crate::table::{Cell, ReadSummary, Row, Table};
use crate::values::parse_number;
use crate::{Catalog, ImportOptions, ImportReport, Phase, Progress, RowError};
use panorama_core::entity::{check_entity_id, check_identifier};
use panorama_core::error::{check_code, check_name};
use panorama_core::{AttributeSpec, Clock, Entity, ValueType};
use panorama_ingest::{Event, Ingest, IngestError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A checked entity and the row it came from.
#[derive(Debug, Clone)]
pub(crate) struct EntityRow {
    pub entity: Entity,
}

const ID: usize = 0;
const CODE: usize = 1;
const TYPE: usize = 2;
const NAME: usize = 3;
const DOMAIN: usize = 4;
const ADMIN_UNIT: usize = 5;
const LON: usize = 6;
const LAT: usize = 7;
const ATTRIBUTES: usize = 8;

/// Parses `pm25:number:µg/m3; status:text` into attribute specs.
pub(crate) fn parse_attributes(s: &str) -> Result<BTreeMap<String, AttributeSpec>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.splitn(3, ':').map(str::trim);
        let name = it.next().unwrap_or_default();
        check_identifier("attributes", name).map_err(|e| format!("'{name}' {}", e.reason))?;
        let ty = it.next().unwrap_or("number");
        let value_type = ValueType::parse(&ty.to_lowercase()).ok_or_else(|| {
            format!("'{part}': the type must be number, text, boolean or json, got '{ty}'")
        })?;
        let unit = it.next().filter(|u| !u.is_empty()).map(str::to_string);
        if out
            .insert(name.to_string(), AttributeSpec { value_type, unit })
            .is_some()
        {
            return Err(format!("the attribute '{name}' is listed twice"));
        }
    }
    Ok(out)
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
                    .unwrap_or_else(|| ENTITY_FIELDS[field].name.to_string()),
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

    fn text(&self, row: &Row<'_, '_>, field: usize) -> Option<String> {
        self.cell(row, field).text().map(|t| t.into_owned())
    }

    fn number(&mut self, row: &Row<'_, '_>, field: usize, decimal_comma: bool) -> Option<f64> {
        match self.cell(row, field).clone() {
            Cell::Empty => None,
            Cell::Number(v) => Some(v),
            Cell::Text(t) => match parse_number(t, decimal_comma) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.err(row, field, e);
                    None
                }
            },
            other => {
                self.err(
                    row,
                    field,
                    format!(
                        "expected a number, got {}",
                        other.text().unwrap_or_default()
                    ),
                );
                None
            }
        }
    }
}

/// Checks every row; see [`crate::values::check`].
pub(crate) fn check(
    table: &mut Table<'_>,
    catalog: &Catalog,
    summary: &mut ReadSummary,
    progress: &Progress,
) -> Result<(Vec<EntityRow>, u64, u64), Vec<RowError>> {
    let cols = Columns::map(
        &table.header,
        ENTITY_FIELDS,
        table.header_row,
        &table.letters,
    )?;
    if cols.index[ID].is_none() && cols.index[CODE].is_none() {
        return Err(vec![RowError {
            row: Some(table.header_row),
            column: Some("id".into()),
            cell: None,
            reason: "an entities file needs an 'id' column (URN) or a 'code' column (mã)".into(),
        }]);
    }
    let header = table.header.clone();
    let decimal_comma = table.decimal_comma;
    let mut rc = RowCheck {
        cols: &cols,
        header: &header,
        errs: Vec::new(),
    };
    let mut rows: Vec<EntityRow> = Vec::new();
    let mut numbers: Vec<u64> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut duplicated: Vec<usize> = Vec::new();
    let mut unplaced = 0u64;
    let mut n = 0u64;
    let mut bad = 0u64;
    let read_errors_before = summary.errors.len();
    table
        .for_each_row(summary, |row| {
            n += 1;
            if n.is_multiple_of(4096) {
                progress.rows_read.store(n, Ordering::Relaxed);
            }
            let before = rc.errs.len();
            let entity_type = rc.text(row, TYPE);
            match &entity_type {
                None => rc.err(row, TYPE, "the entity type is missing"),
                Some(t) => {
                    if let Err(e) = check_identifier("type", t) {
                        rc.err(row, TYPE, format!("'{t}' {}", e.reason));
                    }
                }
            }
            let id = match (rc.text(row, ID), rc.text(row, CODE)) {
                (Some(id), _) => {
                    if let Err(e) = check_entity_id("id", &id) {
                        rc.err(row, ID, format!("'{id}' {}", e.reason));
                    }
                    Some(id)
                }
                (None, Some(code)) => {
                    if let Err(e) = check_code("code", &code) {
                        rc.err(row, CODE, format!("'{code}' {}", e.reason));
                    }
                    entity_type
                        .as_ref()
                        .map(|t| format!("urn:ngsi-ld:{t}:{code}"))
                }
                (None, None) => {
                    rc.err(row, ID, "give an id (URN) or a code");
                    None
                }
            };
            let name = rc.text(row, NAME);
            match &name {
                None => rc.err(row, NAME, "the name is missing"),
                Some(nm) => {
                    if let Err(e) = check_name("name", nm) {
                        rc.err(row, NAME, e.reason);
                    }
                }
            }
            let domain = rc.text(row, DOMAIN);
            match &domain {
                None => rc.err(row, DOMAIN, "the domain is missing"),
                Some(d) if !catalog.domains.contains(d) => {
                    rc.err(row, DOMAIN, format!("unknown domain '{d}'"));
                }
                Some(_) => {}
            }
            let unit = rc.text(row, ADMIN_UNIT);
            let unit_ref = match &unit {
                Some(u) => match catalog.unit_index.get(u) {
                    Some(i) => catalog.units.get(*i as usize),
                    None => {
                        rc.err(row, ADMIN_UNIT, format!("unknown admin unit '{u}'"));
                        None
                    }
                },
                None => None,
            };
            let lon = rc.number(row, LON, decimal_comma);
            let lat = rc.number(row, LAT, decimal_comma);
            let lon_given = !rc.cell(row, LON).is_empty();
            let lat_given = !rc.cell(row, LAT).is_empty();
            let mut location = None;
            match (lon, lat) {
                (Some(x), Some(y)) => {
                    if (8.0..=24.0).contains(&x) && (100.0..=118.0).contains(&y) {
                        rc.err(
                            row,
                            LON,
                            format!(
                                "lon {x} and lat {y} look swapped (Vietnam is near lon 106, lat 11)"
                            ),
                        );
                    } else if !(-180.0..=180.0).contains(&x) {
                        rc.err(row, LON, format!("longitude {x} is outside -180..180"));
                    } else if !(-90.0..=90.0).contains(&y) {
                        rc.err(row, LAT, format!("latitude {y} is outside -90..90"));
                    } else {
                        location = Some(geojson::Geometry::new_point(vec![x, y]));
                    }
                }
                _ if lon_given != lat_given => {
                    let (field, what) = if lon_given {
                        (LAT, "lat")
                    } else {
                        (LON, "lon")
                    };
                    rc.err(
                        row,
                        field,
                        format!("{what} is missing: give both lon and lat, or neither"),
                    );
                }
                _ if lon_given || lat_given => {} // already reported as not numbers
                _ => match (&unit, unit_ref) {
                    (None, _) => rc.err(
                        row,
                        ADMIN_UNIT,
                        "give lon and lat, or an admin unit to place the entity in",
                    ),
                    (Some(_), Some(u)) => {
                        match u
                            .geometry
                            .as_ref()
                            .and_then(panorama_core::geo::representative_point)
                        {
                            Some((x, y)) => {
                                location = Some(geojson::Geometry::new_point(vec![x, y]));
                            }
                            None => unplaced += 1,
                        }
                    }
                    (Some(_), None) => {}
                },
            }
            let attributes = match rc.text(row, ATTRIBUTES) {
                None => BTreeMap::new(),
                Some(a) => match parse_attributes(&a) {
                    Ok(a) => a,
                    Err(e) => {
                        rc.err(row, ATTRIBUTES, e);
                        BTreeMap::new()
                    }
                },
            };
            let mut properties = serde_json::Map::new();
            for (i, h) in &cols.others {
                let v = match row.cells.get(*i) {
                    None | Some(Cell::Empty | Cell::Error(_)) => continue,
                    Some(Cell::Number(n)) => serde_json::Number::from_f64(*n)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    Some(Cell::Bool(b)) => serde_json::Value::Bool(*b),
                    Some(c) => serde_json::Value::String(c.text().unwrap_or_default().into_owned()),
                };
                properties.insert(h.clone(), v);
            }
            if rc.errs.len() > before {
                bad += 1;
                return true;
            }
            let (Some(id), Some(entity_type), Some(name), Some(domain)) =
                (id, entity_type, name, domain)
            else {
                bad += 1;
                return true;
            };
            let entity = Entity {
                id,
                entity_type,
                name,
                domain,
                admin_unit: unit,
                location,
                attributes,
                properties,
                source: None,
                updated_at: None,
            };
            if let Err(inv) = entity.validate() {
                for e in inv.0 {
                    rc.errs.push(RowError {
                        row: Some(row.number),
                        column: Some(e.field),
                        cell: None,
                        reason: e.reason,
                    });
                }
                bad += 1;
                return true;
            }
            match seen.get(&entity.id) {
                Some(&first) => {
                    rc.err(
                        row,
                        if cols.index[ID].is_some() { ID } else { CODE },
                        format!(
                            "duplicate: row {} already has the entity {}",
                            numbers[first], entity.id
                        ),
                    );
                    duplicated.push(first);
                    bad += 1;
                }
                None => {
                    seen.insert(entity.id.clone(), rows.len());
                    numbers.push(row.number);
                    rows.push(EntityRow { entity });
                }
            }
            true
        })
        .map_err(|e| vec![e])?;
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
    duplicated.sort_unstable();
    duplicated.dedup();
    for &i in duplicated.iter().rev() {
        rc.errs.push(RowError {
            row: Some(numbers[i]),
            column: None,
            cell: None,
            reason: format!(
                "duplicate: a later row has the entity {} too",
                rows[i].entity.id
            ),
        });
        rows.swap_remove(i);
        numbers.swap_remove(i);
        bad += 1;
    }
    if unplaced > 0 {
        summary.warnings.push(format!(
            "{unplaced} entities have neither coordinates nor an admin unit with a boundary; they were imported without a location"
        ));
    }
    summary.errors.append(&mut rc.errs);
    progress.rows_read.store(n, Ordering::Relaxed);
    Ok((rows, n, bad))
}

/// Whether two entities say the same (ignoring who wrote them and when).
fn same(a: &Entity, b: &Entity) -> bool {
    a.entity_type == b.entity_type
        && a.name == b.name
        && a.domain == b.domain
        && a.admin_unit == b.admin_unit
        && a.location == b.location
        && a.attributes == b.attributes
        && a.properties == b.properties
}

/// Writes the entities that are new or changed, in batches.
pub(crate) async fn write(
    ingest: &Ingest,
    clock: Arc<dyn Clock>,
    rows: Vec<EntityRow>,
    opts: &ImportOptions,
    progress: &Progress,
    report: &mut ImportReport,
) -> Result<(), IngestError> {
    let mut changed = Vec::with_capacity(rows.len());
    for r in rows {
        match ingest.store().entity(&r.entity.id).await? {
            Some(stored) if same(&stored, &r.entity) => report.unchanged += 1,
            _ => changed.push(r.entity),
        }
    }
    progress
        .to_write
        .store(changed.len() as u64, Ordering::Relaxed);
    if opts.dry_run {
        return Ok(());
    }
    progress.set_phase(Phase::Writing);
    let batch_size = opts.batch_size.clamp(1, 5_000);
    let mut changed = changed.into_iter().peekable();
    while changed.peek().is_some() {
        let batch: Vec<Entity> = changed.by_ref().take(batch_size).collect();
        let n = batch.len() as u64;
        match opts.submitted_by.strip_prefix("source:") {
            Some(source) => {
                ingest.entities(source, batch).await?;
            }
            None => {
                // A person, not a feed: no source activity to count.
                let mut batch = batch;
                for e in &mut batch {
                    e.source = Some(opts.submitted_by.clone());
                }
                let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
                ingest.store().upsert_entities(&batch, clock.now()).await?;
                ingest.bus().publish(Event::EntitiesChanged(Arc::new(ids)));
            }
        }
        report.written += n;
        progress.written.fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lists() {
        let a = parse_attributes("pm25:number:µg/m3; status:text").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a["pm25"].unit.as_deref(), Some("µg/m3"));
        assert_eq!(a["status"].value_type, ValueType::Text);
        assert!(parse_attributes("pm25:float").is_err());
        assert!(parse_attributes("2x:number").is_err());
        assert!(parse_attributes("a:number;a:text").is_err());
    }
}
