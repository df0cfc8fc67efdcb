//! Column headers: each field accepts its English name and the Vietnamese
//! names agencies use (with or without diacritics). Case, spaces, `_`/`-`,
//! a trailing `*` and a parenthesised unit (`Giá trị (tỷ đồng)`) are ignored.

use crate::RowError;

/// A field the importer knows, with the headers that mean it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// Canonical name (used in reports and the template).
    pub name: &'static str,
    /// Whether a file without this column is refused.
    pub required: bool,
    /// Accepted headers, already normalised.
    pub aliases: &'static [&'static str],
}

const ADMIN_UNIT: &[&str] = &[
    "admin unit",
    "admin unit code",
    "admin_unit",
    "đơn vị hành chính",
    "mã đơn vị hành chính",
    "mã đvhc",
    "đvhc",
    "địa bàn",
    "mã địa bàn",
    "don vi hanh chinh",
    "ma don vi hanh chinh",
    "dia ban",
    "ma dia ban",
];

/// Columns of an indicator-values file.
pub(crate) const VALUE_FIELDS: &[Field] = &[
    Field {
        name: "indicator",
        required: true,
        aliases: &[
            "indicator",
            "indicator code",
            "chỉ tiêu",
            "mã chỉ tiêu",
            "chi tieu",
            "ma chi tieu",
        ],
    },
    Field {
        name: "period",
        required: true,
        aliases: &[
            "period",
            "kỳ",
            "kỳ báo cáo",
            "thời kỳ",
            "ky",
            "ky bao cao",
            "thoi ky",
        ],
    },
    Field {
        name: "admin_unit",
        required: true,
        aliases: ADMIN_UNIT,
    },
    Field {
        name: "value",
        required: true,
        aliases: &["value", "giá trị", "số liệu", "gia tri", "so lieu"],
    },
    Field {
        name: "status",
        required: false,
        aliases: &["status", "trạng thái", "tình trạng", "trang thai"],
    },
    Field {
        name: "note",
        required: false,
        aliases: &["note", "notes", "ghi chú", "ghi chu"],
    },
];

/// Columns of an entities file. Any other column becomes a static property.
pub(crate) const ENTITY_FIELDS: &[Field] = &[
    Field {
        name: "id",
        required: false,
        aliases: &["id", "entity id", "urn", "mã định danh", "ma dinh danh"],
    },
    Field {
        name: "code",
        required: false,
        aliases: &["code", "mã", "ma", "mã đối tượng", "ma doi tuong"],
    },
    Field {
        name: "type",
        required: true,
        aliases: &["type", "entity type", "loại", "loai"],
    },
    Field {
        name: "name",
        required: true,
        aliases: &["name", "tên", "ten"],
    },
    Field {
        name: "domain",
        required: true,
        aliases: &["domain", "lĩnh vực", "linh vuc"],
    },
    Field {
        name: "admin_unit",
        required: false,
        aliases: ADMIN_UNIT,
    },
    Field {
        name: "lon",
        required: false,
        aliases: &["lon", "lng", "long", "longitude", "kinh độ", "kinh do"],
    },
    Field {
        name: "lat",
        required: false,
        aliases: &["lat", "latitude", "vĩ độ", "vi do"],
    },
    Field {
        name: "attributes",
        required: false,
        aliases: &["attributes", "thuộc tính", "thuoc tinh"],
    },
];

/// Lower-case, `_`/`-` as spaces, single spaces, without a trailing `*`
/// or a parenthesised suffix.
pub(crate) fn normalise(h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}');
    let h = match h.find('(') {
        Some(i) if i > 0 => &h[..i],
        _ => h,
    };
    let h = h.trim().trim_end_matches('*').to_lowercase();
    h.replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where each known field is in the header, and the other columns.
#[derive(Debug)]
pub(crate) struct Columns {
    /// Header index of each field of the list, in list order.
    pub index: Vec<Option<usize>>,
    /// Columns that are no known field: (index, header as written).
    pub others: Vec<(usize, String)>,
}

impl Columns {
    /// Maps a header row onto `fields`; refuses missing required columns,
    /// empty headers over data and two columns meaning the same field.
    pub(crate) fn map(
        header: &[String],
        fields: &[Field],
        header_row: u64,
        letters: &[String],
    ) -> Result<Self, Vec<RowError>> {
        let mut index = vec![None; fields.len()];
        let mut others = Vec::new();
        let mut errs = Vec::new();
        for (i, h) in header.iter().enumerate() {
            let n = normalise(h);
            let letter = letters.get(i).cloned().unwrap_or_default();
            if n.is_empty() {
                errs.push(RowError {
                    row: Some(header_row),
                    column: None,
                    cell: Some(format!("{letter}{header_row}")),
                    reason: "the column has no header".into(),
                });
                continue;
            }
            match fields
                .iter()
                .position(|f| f.aliases.contains(&n.as_str()) || f.name == n)
            {
                Some(f) => {
                    if let Some(prev) = index[f] {
                        errs.push(RowError {
                            row: Some(header_row),
                            column: Some(h.clone()),
                            cell: Some(format!("{letter}{header_row}")),
                            reason: format!(
                                "columns '{}' and '{h}' both mean '{}'",
                                header[prev], fields[f].name
                            ),
                        });
                    } else {
                        index[f] = Some(i);
                    }
                }
                None => others.push((i, h.clone())),
            }
        }
        for (f, at) in fields.iter().zip(&index) {
            if f.required && at.is_none() {
                errs.push(RowError {
                    row: Some(header_row),
                    column: Some(f.name.into()),
                    cell: None,
                    reason: format!(
                        "the required column '{}' is missing (accepted headers: {})",
                        f.name,
                        f.aliases.join(", ")
                    ),
                });
            }
        }
        if errs.is_empty() {
            Ok(Self { index, others })
        } else {
            Err(errs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_normalised() {
        assert_eq!(normalise(" Giá trị (tỷ đồng) "), "giá trị");
        assert_eq!(normalise("Admin_Unit*"), "admin unit");
        assert_eq!(normalise("\u{feff}Chỉ tiêu"), "chỉ tiêu");
        assert_eq!(normalise("KỲ  BÁO   CÁO"), "kỳ báo cáo");
    }

    #[test]
    fn vietnamese_and_english_headers_map_to_the_same_fields() {
        let letters: Vec<String> = (0..6).map(crate::table::column_letter).collect();
        let h: Vec<String> = [
            "Mã chỉ tiêu",
            "Kỳ",
            "Địa bàn",
            "Giá trị",
            "Ghi chú",
            "Nguồn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Columns::map(&h, VALUE_FIELDS, 1, &letters).unwrap();
        assert_eq!(
            c.index,
            vec![Some(0), Some(1), Some(2), Some(3), None, Some(4)]
        );
        assert_eq!(c.others, vec![(5, "Nguồn".to_string())]);
        let missing = Columns::map(&h[..2], VALUE_FIELDS, 1, &letters).unwrap_err();
        assert_eq!(missing.len(), 2);
        assert!(missing[0].reason.contains("admin_unit"));
    }
}
