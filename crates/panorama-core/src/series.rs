//! Time buckets and aggregations for series queries.

use serde::{Deserialize, Serialize};

/// How the values in a bucket are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum.
    Sum,
    /// Number of values.
    Count,
    /// Value with the latest time.
    Last,
}

impl Agg {
    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "sum" => Self::Sum,
            "count" => Self::Count,
            "last" => Self::Last,
            _ => return None,
        })
    }
}

/// Vietnam's offset from UTC. Vietnam keeps no daylight saving, so buckets
/// of an hour or more are aligned to local (Asia/Ho_Chi_Minh) boundaries.
pub const VN_OFFSET_MS: i64 = 7 * 3600 * 1000;

/// A bucket width between one minute and one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket(i64);

impl Bucket {
    /// The allowed widths, as written in queries.
    pub const ALLOWED: &'static [(&'static str, i64)] = &[
        ("1m", 60_000),
        ("5m", 300_000),
        ("10m", 600_000),
        ("15m", 900_000),
        ("30m", 1_800_000),
        ("1h", 3_600_000),
        ("3h", 10_800_000),
        ("6h", 21_600_000),
        ("12h", 43_200_000),
        ("1d", 86_400_000),
    ];

    /// Parses `1m`, `5m`, … `1d`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALLOWED
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, ms)| Self(*ms))
            .ok_or_else(|| {
                format!(
                    "must be one of {}",
                    Self::ALLOWED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Width in milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Start of the bucket containing `t_ms` (milliseconds since the epoch),
    /// aligned to Vietnamese local time.
    pub fn floor(self, t_ms: i64) -> i64 {
        (t_ms + VN_OFFSET_MS).div_euclid(self.0) * self.0 - VN_OFFSET_MS
    }
}

/// Running aggregate of numbers in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acc {
    /// Number of values.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Time of the latest value.
    pub last_t: i64,
    /// Latest value.
    pub last: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last_t: i64::MIN,
            last: f64::NAN,
        }
    }
}

impl Acc {
    /// Adds one value at time `t_ms`.
    pub fn add(&mut self, t_ms: i64, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if t_ms >= self.last_t {
            self.last_t = t_ms;
            self.last = v;
        }
    }

    /// Folds another accumulator in.
    pub fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.last_t >= self.last_t {
            self.last_t = o.last_t;
            self.last = o.last;
        }
    }

    /// The aggregate asked for, or None for an empty bucket.
    pub fn get(&self, agg: Agg) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(match agg {
            Agg::Avg => self.sum / self.count as f64,
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Sum => self.sum,
            Agg::Count => self.count as f64,
            Agg::Last => self.last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn day_buckets_start_at_vietnamese_midnight() {
        let d = Bucket::parse("1d").unwrap();
        // 2024-05-01T00:30:00+07:00 is 2024-04-30T17:30:00Z.
        let t = 1_714_498_200_000;
        assert_eq!(d.floor(t), 1_714_496_400_000); // 2024-04-30T17:00:00Z = local midnight
        assert!(Bucket::parse("2m").is_err());
    }

    #[test]
    fn accumulates() {
        let mut a = Acc::default();
        assert_eq!(a.get(Agg::Avg), None);
        a.add(2, 4.0);
        a.add(1, 2.0);
        assert_eq!(a.get(Agg::Avg), Some(3.0));
        assert_eq!(a.get(Agg::Last), Some(4.0));
        assert_eq!(a.get(Agg::Count), Some(2.0));
    }

    proptest! {
        #[test]
        fn floor_is_within_one_bucket(t in -4_000_000_000_000i64..8_000_000_000_000, i in 0usize..10) {
            let b = Bucket(Bucket::ALLOWED[i].1);
            let f = b.floor(t);
            prop_assert!(f <= t && t - f < b.millis());
            prop_assert_eq!(b.floor(f), f);
        }
    }
}
