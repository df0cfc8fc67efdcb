//! Indicators (chỉ tiêu, KPI): what leaders track against plan targets, and
//! their values per period and admin unit with status and revision history.

use crate::error::{FieldError, Invalid, check_code, check_name};
use crate::series::Agg;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often an indicator has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Periodicity {
    /// Computed continuously from live series; values are kept per day.
    RealTime,
    /// One value per day.
    Daily,
    /// One value per month.
    Monthly,
    /// One value per quarter.
    Quarterly,
    /// One value per year.
    Yearly,
}

impl Periodicity {
    /// The snake_case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RealTime => "real_time",
            Self::Daily => "daily",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Yearly => "yearly",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "real_time" => Self::RealTime,
            "daily" => Self::Daily,
            "monthly" => Self::Monthly,
            "quarterly" => Self::Quarterly,
            "yearly" => Self::Yearly,
            _ => return None,
        })
    }

    /// An example period label, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            Self::RealTime | Self::Daily => "2024-05-31",
            Self::Monthly => "2024-05",
            Self::Quarterly => "2024-Q2",
            Self::Yearly => "2024",
        }
    }
}

/// Whether a higher or a lower value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is better (enrolment, FDI).
    HigherIsBetter,
    /// Less is better (accidents, AQI, CPI growth).
    LowerIsBetter,
}

/// Where green, amber and red begin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Thresholds {
    /// Share of the year's plan target reached (value ÷ target, or target ÷
    /// value when lower is better): green from `green`, amber from `amber`.
    TargetRatio {
        /// e.g. 1.0: on plan.
        green: f64,
        /// e.g. 0.9: within 10 % of plan.
        amber: f64,
    },
    /// Bounds on the value itself: with higher-is-better, green at or above
    /// `green`, amber at or above `amber`; with lower-is-better, at or below.
    Absolute {
        /// Green bound.
        green: f64,
        /// Amber bound.
        amber: f64,
    },
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::TargetRatio {
            green: 1.0,
            amber: 0.9,
        }
    }
}

/// How an indicator's values come to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Computation {
    /// Submitted by the owner agency (periodic statistics).
    Submitted,
    /// Aggregated from the series of one attribute of an entity type.
    FromSeries {
        /// Entity type whose series are aggregated.
        entity_type: String,
        /// Attribute aggregated.
        attribute: String,
        /// Aggregation.
        agg: Agg,
    },
    /// Computed from other indicators by an expression over their codes.
    FromIndicators {
        /// e.g. `fdi-capital / fdi-projects`.
        expression: String,
    },
}

/// An indicator definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Indicator {
    /// Stable code, e.g. `admin-dossiers-online-rate`.
    pub code: String,
    /// Vietnamese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Domain code.
    pub domain: String,
    /// Unit, e.g. `%`, `tỷ USD`, `vụ`.
    pub unit: String,
    /// How often it has a value.
    pub periodicity: Periodicity,
    /// Whether higher or lower is better.
    pub direction: Direction,
    /// Plan target per year (`"2024": 99.0`).
    #[serde(default)]
    pub targets: BTreeMap<i32, f64>,
    /// Where green, amber and red begin.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Agency that owns and submits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_agency: Option<String>,
    /// How values are computed.
    #[serde(default = "submitted")]
    pub computation: Computation,
    /// Where the figures come from (publication, system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Shown on the domain's overview tile.
    #[serde(default)]
    pub headline: bool,
}

fn submitted() -> Computation {
    Computation::Submitted
}

impl Indicator {
    /// Checks codes, names, targets and thresholds.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_code("code", &self.code).err());
        errs.extend(check_name("name", &self.name).err());
        errs.extend(check_name("name_en", &self.name_en).err());
        errs.extend(check_code("domain", &self.domain).err());
        if self.unit.chars().count() > 32 {
            errs.push(FieldError::new("unit", "must be at most 32 characters"));
        }
        if let Some(a) = &self.owner_agency {
            errs.extend(check_code("owner_agency", a).err());
        }
        for (year, t) in &self.targets {
            if !t.is_finite() {
                errs.push(FieldError::new(
                    format!("targets.{year}"),
                    "must be a finite number",
                ));
            }
            if !(1900..=2200).contains(year) {
                errs.push(FieldError::new(
                    format!("targets.{year}"),
                    "year must be between 1900 and 2200",
                ));
            }
        }
        let (g, a) = match self.thresholds {
            Thresholds::TargetRatio { green, amber } | Thresholds::Absolute { green, amber } => {
                (green, amber)
            }
        };
        if !g.is_finite() || !a.is_finite() {
            errs.push(FieldError::new(
                "thresholds",
                "bounds must be finite numbers",
            ));
        } else {
            let ordered = match (self.thresholds, self.direction) {
                (Thresholds::TargetRatio { .. }, _)
                | (Thresholds::Absolute { .. }, Direction::HigherIsBetter) => g >= a,
                (Thresholds::Absolute { .. }, Direction::LowerIsBetter) => g <= a,
            };
            if !ordered {
                errs.push(FieldError::new(
                    "thresholds",
                    "the green bound must be at least as good as the amber bound",
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }

    /// The status colour of `value` for a period of `year`.
    pub fn status(&self, value: f64, year: i32) -> IndicatorStatus {
        let higher = self.direction == Direction::HigherIsBetter;
        match self.thresholds {
            Thresholds::Absolute { green, amber } => {
                let better_or_eq =
                    |v: f64, bound: f64| if higher { v >= bound } else { v <= bound };
                if better_or_eq(value, green) {
                    IndicatorStatus::Green
                } else if better_or_eq(value, amber) {
                    IndicatorStatus::Amber
                } else {
                    IndicatorStatus::Red
                }
            }
            Thresholds::TargetRatio { green, amber } => {
                let Some(&target) = self.targets.get(&year) else {
                    return IndicatorStatus::Unknown;
                };
                let ratio = attainment(value, target, higher);
                if ratio >= green {
                    IndicatorStatus::Green
                } else if ratio >= amber {
                    IndicatorStatus::Amber
                } else {
                    IndicatorStatus::Red
                }
            }
        }
    }
}

/// Share of the target reached; > 1 means better than planned.
pub fn attainment(value: f64, target: f64, higher_is_better: bool) -> f64 {
    let (num, den) = if higher_is_better {
        (value, target)
    } else {
        (target, value)
    };
    if den == 0.0 {
        if num >= 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    } else if den < 0.0 {
        // Negative targets (e.g. a fall in accidents): compare the distance.
        2.0 - num / den
    } else {
        num / den
    }
}

/// Status colour against plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorStatus {
    /// On track.
    Green,
    /// At risk.
    Amber,
    /// Off track.
    Red,
    /// No target for the year, so no judgement.
    Unknown,
}

/// Status of a submitted figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueStatus {
    /// Preliminary estimate.
    Provisional,
    /// Official figure.
    Final,
    /// Changed after publication.
    Revised,
}

impl ValueStatus {
    /// The lower-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisional => "provisional",
            Self::Final => "final",
            Self::Revised => "revised",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provisional" => Self::Provisional,
            "final" => Self::Final,
            "revised" => Self::Revised,
            _ => return None,
        })
    }
}

/// A reporting period: a day, month, quarter or year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// `2024`.
    Year(i32),
    /// `2024-Q2`.
    Quarter(i32, u32),
    /// `2024-05`.
    Month(i32, u32),
    /// `2024-05-31`.
    Day(NaiveDate),
}

impl Period {
    /// Parses `2024`, `2024-Q2`, `2024-05` or `2024-05-31`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a period: use 2024, 2024-Q2, 2024-05 or 2024-05-31");
        let year = |y: &str| -> Result<i32, String> {
            let y: i32 = y.parse().map_err(|_| bad())?;
            if (1900..=2200).contains(&y) && s.len() >= 4 {
                Ok(y)
            } else {
                Err(bad())
            }
        };
        if !s.is_ascii() {
            return Err(bad());
        }
        match s.len() {
            4 => Ok(Self::Year(year(s)?)),
            7 if s.as_bytes()[5] == b'Q' => {
                let q: u32 = s[6..].parse().map_err(|_| bad())?;
                if !(1..=4).contains(&q) || &s[4..5] != "-" {
                    return Err(bad());
                }
                Ok(Self::Quarter(year(&s[..4])?, q))
            }
            7 => {
                let m: u32 = s[5..].parse().map_err(|_| bad())?;
                if !(1..=12).contains(&m) || &s[4..5] != "-" {
                    return Err(bad());
                }
                Ok(Self::Month(year(&s[..4])?, m))
            }
            10 => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
                year(&s[..4])?;
                Ok(Self::Day(d))
            }
            _ => Err(bad()),
        }
    }

    /// The year the period falls in (for plan targets).
    pub fn year(&self) -> i32 {
        match *self {
            Self::Year(y) | Self::Quarter(y, _) | Self::Month(y, _) => y,
            Self::Day(d) => d.year(),
        }
    }

    /// The first day of the period.
    pub fn start(&self) -> NaiveDate {
        let ymd = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MIN);
        match *self {
            Self::Year(y) => ymd(y, 1),
            Self::Quarter(y, q) => ymd(y, 3 * (q - 1) + 1),
            Self::Month(y, m) => ymd(y, m),
            Self::Day(d) => d,
        }
    }

    /// Whether the period has the shape an indicator of `p` expects.
    pub fn fits(&self, p: Periodicity) -> bool {
        matches!(
            (self, p),
            (Self::Year(_), Periodicity::Yearly)
                | (Self::Quarter(..), Periodicity::Quarterly)
                | (Self::Month(..), Periodicity::Monthly)
                | (Self::Day(_), Periodicity::Daily | Periodicity::RealTime)
        )
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Year(y) => write!(f, "{y:04}"),
            Self::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Self::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Self::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

/// A value as submitted by an agency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorValueInput {
    /// Indicator code.
    pub indicator: String,
    /// Period label: `2024`, `2024-Q2`, `2024-05` or `2024-05-31`.
    pub period: String,
    /// Admin unit code the value is for.
    pub admin_unit: String,
    /// The figure.
    pub value: f64,
    /// Defaults to `provisional` for a first submission and `revised` for a resubmission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ValueStatus>,
    /// Free-text note (method, caveats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl IndicatorValueInput {
    /// Checks the parts that need no store: codes, period label, finite value.
    pub fn validate(&self) -> Result<Period, Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_code("indicator", &self.indicator).err());
        errs.extend(check_code("admin_unit", &self.admin_unit).err());
        if !self.value.is_finite() {
            errs.push(FieldError::new("value", "must be a finite number"));
        }
        if let Some(n) = &self.note
            && n.chars().count() > 2000
        {
            errs.push(FieldError::new("note", "must be at most 2000 characters"));
        }
        let period = Period::parse(&self.period).map_err(|e| FieldError::new("period", e));
        match period {
            Ok(p) if errs.is_empty() => Ok(p),
            Ok(_) => Err(Invalid(errs)),
            Err(e) => {
                errs.push(e);
                Err(Invalid(errs))
            }
        }
    }
}

/// One revision of an indicator's value for a period and admin unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndicatorValue {
    /// Indicator code.
    pub indicator: String,
    /// Period label.
    pub period: String,
    /// Admin unit code.
    pub admin_unit: String,
    /// The figure.
    pub value: f64,
    /// Provisional, final or revised.
    pub status: ValueStatus,
    /// 1 for the first submission, then 2, 3… for each resubmission.
    pub revision: u32,
    /// Who submitted it (`source:<id>` or `user:<name>`).
    pub submitted_by: String,
    /// When the server accepted it.
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    /// Free-text note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ind(direction: Direction, thresholds: Thresholds) -> Indicator {
        Indicator {
            code: "x".into(),
            name: "x".into(),
            name_en: "x".into(),
            domain: "health".into(),
            unit: "%".into(),
            periodicity: Periodicity::Monthly,
            direction,
            targets: [(2024, 100.0)].into_iter().collect(),
            thresholds,
            owner_agency: None,
            computation: Computation::Submitted,
            source: None,
            headline: false,
        }
    }

    #[test]
    fn status_against_target() {
        let i = ind(Direction::HigherIsBetter, Thresholds::default());
        assert_eq!(i.status(100.0, 2024), IndicatorStatus::Green);
        assert_eq!(i.status(95.0, 2024), IndicatorStatus::Amber);
        assert_eq!(i.status(89.0, 2024), IndicatorStatus::Red);
        assert_eq!(i.status(89.0, 2023), IndicatorStatus::Unknown);
        let l = ind(Direction::LowerIsBetter, Thresholds::default());
        assert_eq!(l.status(100.0, 2024), IndicatorStatus::Green);
        assert_eq!(l.status(105.0, 2024), IndicatorStatus::Amber);
        assert_eq!(l.status(120.0, 2024), IndicatorStatus::Red);
    }

    #[test]
    fn absolute_thresholds() {
        let aqi = ind(
            Direction::LowerIsBetter,
            Thresholds::Absolute {
                green: 50.0,
                amber: 100.0,
            },
        );
        assert_eq!(aqi.status(50.0, 2024), IndicatorStatus::Green);
        assert_eq!(aqi.status(80.0, 2024), IndicatorStatus::Amber);
        assert_eq!(aqi.status(150.0, 2024), IndicatorStatus::Red);
        assert!(aqi.validate().is_ok());
        let wrong = ind(
            Direction::LowerIsBetter,
            Thresholds::Absolute {
                green: 100.0,
                amber: 50.0,
            },
        );
        assert!(wrong.validate().is_err());
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse("2024-Q2"), Ok(Period::Quarter(2024, 2)));
        assert_eq!(
            Period::parse("2024-05").map(|p| p.to_string()).as_deref(),
            Ok("2024-05")
        );
        assert!(Period::parse("2024-13").is_err());
        assert!(Period::parse("2024-Q5").is_err());
        assert!(Period::parse("2024-02-30").is_err());
        assert!(Period::parse("24").is_err());
        assert!(Period::parse("2024-5").is_err());
        assert!(Period::Month(2024, 5).fits(Periodicity::Monthly));
        assert!(!Period::Month(2024, 5).fits(Periodicity::Yearly));
    }

    proptest! {
        #[test]
        fn period_labels_round_trip(y in 1900i32..2200, m in 1u32..=12, q in 1u32..=4, d in 0u32..365) {
            for p in [Period::Year(y), Period::Month(y, m), Period::Quarter(y, q)] {
                prop_assert_eq!(Period::parse(&p.to_string()), Ok(p));
            }
            if let Some(day) = NaiveDate::from_yo_opt(y, d + 1) {
                prop_assert_eq!(Period::parse(&Period::Day(day).to_string()), Ok(Period::Day(day)));
            }
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,12}") {
            let _ = Period::parse(&s);
        }
    }
}
