//! Administrative units: the hierarchy everything geographic rolls up along.
//! Units have validity periods and successors, so a reorganisation (such as
//! Binh Duong joining Ho Chi Minh City on 1 July 2025) keeps history comparable.

use crate::error::{FieldError, Invalid, check_code, check_name};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Level of an administrative unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdminLevel {
    /// Country.
    Country,
    /// Province or centrally-run city (tỉnh, thành phố trực thuộc trung ương).
    Province,
    /// District (huyện, thị xã, thành phố thuộc tỉnh); abolished in 2025.
    District,
    /// Commune or ward (xã, phường, thị trấn).
    Commune,
}

impl AdminLevel {
    /// The lower-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Province => "province",
            Self::District => "district",
            Self::Commune => "commune",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "country" => Self::Country,
            "province" => Self::Province,
            "district" => Self::District,
            "commune" => Self::Commune,
            _ => return None,
        })
    }
}

/// An administrative unit (province 74, district 718, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminUnit {
    /// Official code (GSO), e.g. `74` for Binh Duong, `718` for Thủ Dầu Một.
    pub code: String,
    /// Vietnamese name with diacritics.
    pub name: String,
    /// English name, if different.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// Level in the hierarchy.
    pub level: AdminLevel,
    /// Code of the parent unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Boundary as a GeoJSON Polygon or MultiPolygon (WGS 84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub geometry: Option<geojson::Geometry>,
    /// First day the unit exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    /// First day the unit no longer exists (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    /// Units that took over this one's area when it ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub successors: Vec<String>,
}

impl AdminUnit {
    /// Whether the unit exists on `day`.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| day >= f) && self.valid_to.is_none_or(|t| day < t)
    }

    /// Checks codes, names, dates and geometry type.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        if let Err(e) = check_code("code", &self.code) {
            errs.push(e);
        }
        if let Err(e) = check_name("name", &self.name) {
            errs.push(e);
        }
        if let Some(p) = &self.parent {
            if let Err(e) = check_code("parent", p) {
                errs.push(e);
            } else if *p == self.code {
                errs.push(FieldError::new("parent", "a unit cannot be its own parent"));
            }
        }
        if let (Some(f), Some(t)) = (self.valid_from, self.valid_to)
            && t <= f
        {
            errs.push(FieldError::new("valid_to", "must be after valid_from"));
        }
        if let Some(g) = &self.geometry
            && let Err(e) = crate::geo::area_from_geojson(g)
        {
            errs.push(FieldError::new("geometry", e));
        }
        for (i, s) in self.successors.iter().enumerate() {
            if let Err(e) = check_code(&format!("successors[{i}]"), s) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }
}
