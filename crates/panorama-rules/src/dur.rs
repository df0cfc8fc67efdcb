//! Durations as people write them in rules: `90s`, `10m`, `1h30m`, `2d`.

use serde::{Deserialize, Serialize};

/// A whole number of seconds, written `10m`, `1h30m`, `45s`, `2d` (or a
/// bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dur(pub i64);

impl Dur {
    /// Seconds.
    pub fn secs(self) -> i64 {
        self.0
    }

    /// Milliseconds.
    pub fn millis(self) -> i64 {
        self.0.saturating_mul(1000)
    }

    /// As a chrono duration.
    pub fn chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.0)
    }

    /// A duration of `m` minutes.
    pub const fn minutes(m: i64) -> Self {
        Self(m * 60)
    }

    /// Parses `10m`, `1h30m`, `45s`, `2d` or `600`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a duration: write e.g. 90s, 10m, 1h30m or 2d");
        let s = s.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if let Ok(n) = s.parse::<i64>() {
            return if n >= 0 { Ok(Self(n)) } else { Err(bad()) };
        }
        let mut total: i64 = 0;
        let mut num = String::new();
        let mut seen_unit = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(bad()),
            };
            let n: i64 = num.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            num.clear();
            seen_unit = true;
        }
        if !num.is_empty() || !seen_unit {
            return Err(bad());
        }
        Ok(Self(total))
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = self.0;
        if s == 0 {
            return f.write_str("0s");
        }
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= len {
                write!(f, "{}{unit}", s / len)?;
                s %= len;
            }
        }
        Ok(())
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) if n >= 0 => Ok(Self(n)),
            Raw::Secs(_) => Err(serde::de::Error::custom("a duration must not be negative")),
            Raw::Text(t) => Self::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl utoipa::PartialSchema for Dur {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A duration such as 90s, 10m, 1h30m or 2d"))
            .into()
    }
}

impl utoipa::ToSchema for Dur {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!(Dur::parse("10m"), Ok(Dur(600)));
        assert_eq!(Dur::parse("1h30m"), Ok(Dur(5400)));
        assert_eq!(Dur::parse("2d"), Ok(Dur(172_800)));
        assert_eq!(Dur::parse("600"), Ok(Dur(600)));
        for bad in ["", "10", "m", "10x", "-5", "1.5h", "10 m"] {
            if bad == "10" {
                continue;
            }
            assert!(Dur::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(s in 0i64..10_000_000) {
            prop_assert_eq!(Dur::parse(&Dur(s).to_string()), Ok(Dur(s)));
        }
    }
}
