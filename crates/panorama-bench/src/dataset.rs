//! The deterministic dataset: sensors placed in the nine districts of the
//! province, and one reading a minute for a day, the same for every store.
//!
//! Values are whole tenths (a reading such as `23.4`), carried as integers
//! so that every store receives the same decimal text and answers can be
//! checked exactly; the expected answers of every query are computed here.

use std::collections::BTreeMap;

/// 2024-05-01T00:00:00+07:00 (a Vietnamese midnight), in seconds.
pub const T0: i64 = 1_714_496_400;
/// The province and its districts (GSO codes of Binh Duong before 2025).
pub const PROVINCE: &str = "74";
/// District codes 718–726.
pub const DISTRICTS: [u32; 9] = [718, 719, 720, 721, 722, 723, 724, 725, 726];
/// The box the province covers (west, south, east, north).
pub const BOX: (f64, f64, f64, f64) = (106.35, 10.85, 106.95, 11.5);
/// Entity type and attribute of every sensor.
pub const ENTITY_TYPE: &str = "AirQualityObserved";
/// The observed attribute.
pub const ATTRIBUTE: &str = "pm25";

/// A small seeded generator (splitmix64), so every run stores the same data.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(z: u64) -> f64 {
    (mix(z) >> 11) as f64 / (1u64 << 53) as f64
}

/// One sensor.
#[derive(Debug, Clone)]
pub struct Sensor {
    /// 0-based index.
    pub index: u32,
    /// Index into [`DISTRICTS`].
    pub district: usize,
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    base: f64,
    amp: f64,
    phase: f64,
}

impl Sensor {
    /// The district's code.
    pub fn district_code(&self) -> u32 {
        DISTRICTS.get(self.district).copied().unwrap_or(718)
    }
}

/// The district rectangles: a 3 × 3 grid tiling [`BOX`], as (west, south, east, north).
pub fn district_rect(d: usize) -> (f64, f64, f64, f64) {
    let (w, s, e, n) = BOX;
    let (col, row) = ((d % 3) as f64, (d / 3) as f64);
    let dx = (e - w) / 3.0;
    let dy = (n - s) / 3.0;
    // Rounded so that the polygons printed in JSON, SQL and Flux are identical.
    let r = |v: f64| (v * 1e6).round() / 1e6;
    (
        r(w + col * dx),
        r(s + row * dy),
        r(w + (col + 1.0) * dx),
        r(s + (row + 1.0) * dy),
    )
}

/// A closed ring of a rectangle, counter-clockwise.
pub fn ring(r: (f64, f64, f64, f64)) -> Vec<[f64; 2]> {
    let (w, s, e, n) = r;
    vec![[w, s], [e, s], [e, n], [w, n], [w, s]]
}

/// The dataset's shape.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every sensor.
    pub sensors: Vec<Sensor>,
    /// Minutes of the day (1,440 for a full day).
    pub minutes: u32,
}

impl Dataset {
    /// `sensors` sensors × `minutes` one-minute readings.
    pub fn new(sensors: u32, minutes: u32) -> Self {
        let sensors = (0..sensors)
            .map(|i| {
                let k = u64::from(i) << 8;
                let district = (mix(k) % 9) as usize;
                let (w, s, e, n) = district_rect(district);
                // Strictly inside the district (never on a shared edge), 5 decimals.
                let m = 0.002;
                let r = |v: f64| (v * 1e5).round() / 1e5;
                Sensor {
                    index: i,
                    district,
                    lon: r(w + m + (e - w - 2.0 * m) * unit(k + 1)),
                    lat: r(s + m + (n - s - 2.0 * m) * unit(k + 2)),
                    base: 15.0 + 40.0 * unit(k + 3),
                    amp: 3.0 + 12.0 * unit(k + 4),
                    phase: std::f64::consts::TAU * unit(k + 5),
                }
            })
            .collect();
        Self { sensors, minutes }
    }

    /// Number of observations.
    pub fn len(&self) -> u64 {
        self.sensors.len() as u64 * u64::from(self.minutes)
    }

    /// The reading of sensor `s` at minute `m`, in tenths (a smooth daily
    /// curve, an evening peak and a little noise; never negative).
    pub fn tenths(&self, s: &Sensor, m: u32) -> i64 {
        let day = std::f64::consts::TAU * f64::from(m) / 1440.0;
        let evening = (-((f64::from(m) - 1140.0) / 90.0).powi(2)).exp();
        let noise = unit((u64::from(s.index) << 20) ^ u64::from(m) ^ 0x5eed) - 0.5;
        let v = s.base + s.amp * (day + s.phase).sin() + 8.0 * evening + 1.2 * noise;
        (v * 10.0).round().max(0.0) as i64
    }

    /// Seconds since the epoch of minute `m`.
    pub fn time(&self, m: u32) -> i64 {
        T0 + 60 * i64::from(m)
    }

    /// The end of the window (exclusive).
    pub fn end(&self) -> i64 {
        self.time(self.minutes)
    }

    /// Entity id of a sensor.
    pub fn entity_id(index: u32) -> String {
        format!("urn:ngsi-ld:{ENTITY_TYPE}:bd-{index:05}")
    }

    /// Sensor index of an entity id.
    pub fn index_of(id: &str) -> Option<u32> {
        id.rsplit_once("bd-")?.1.parse().ok()
    }

    /// The sensor Q2 reads on run `run`.
    pub fn q2_sensor(&self, run: usize) -> u32 {
        let n = self.sensors.len().max(1);
        ((42 + run * 7919) % n) as u32
    }
}

/// Formats tenths as a decimal (`234` → `23.4`).
pub fn decimal(t: i64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{}.{}", t / 10, t % 10);
}

/// The district Q5 asks about (the central one).
pub const Q5_DISTRICT: usize = 4;

/// What every store must answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers {
    /// Q1: per minute (epoch seconds), the average of all sensors.
    pub q1: Vec<(i64, f64)>,
    /// Q2: sensor `q2_sensor(0)`'s values (epoch seconds, tenths).
    pub q2: Vec<(i64, i64)>,
    /// Q3: every sensor's latest value (sensor, tenths).
    pub q3: Vec<(u32, i64)>,
    /// Q4: per (district code, hour start) the average.
    pub q4: BTreeMap<(u32, i64), f64>,
    /// Q5: latest values of the sensors in district [`Q5_DISTRICT`] (sensor, tenths).
    pub q5: Vec<(u32, i64)>,
}

impl Dataset {
    /// The answers computed from the data itself.
    pub fn expected(&self) -> Answers {
        let mut a = Answers::default();
        let n = self.sensors.len() as f64;
        for m in 0..self.minutes {
            let sum: i64 = self.sensors.iter().map(|s| self.tenths(s, m)).sum();
            a.q1.push((self.time(m), sum as f64 / 10.0 / n));
        }
        if let Some(s) = self.sensors.get(self.q2_sensor(0) as usize) {
            a.q2 = (0..self.minutes)
                .map(|m| (self.time(m), self.tenths(s, m)))
                .collect();
        }
        let last = self.minutes.saturating_sub(1);
        a.q3 = self
            .sensors
            .iter()
            .map(|s| (s.index, self.tenths(s, last)))
            .collect();
        let mut sums: BTreeMap<(u32, i64), (i64, i64)> = BTreeMap::new();
        for s in &self.sensors {
            for m in 0..self.minutes {
                let hour = T0 + 3600 * i64::from(m / 60);
                let e = sums.entry((s.district_code(), hour)).or_default();
                e.0 += self.tenths(s, m);
                e.1 += 1;
            }
        }
        a.q4 = sums
            .into_iter()
            .map(|(k, (sum, count))| (k, sum as f64 / 10.0 / count as f64))
            .collect();
        a.q5 = self
            .sensors
            .iter()
            .filter(|s| s.district == Q5_DISTRICT)
            .map(|s| (s.index, self.tenths(s, last)))
            .collect();
        a
    }
}

/// How one store's answers differ from the expected ones (empty: none).
pub fn compare(expected: &Answers, got: &Answers) -> Vec<String> {
    let mut out = Vec::new();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1e-9);
    if got.q1.len() != expected.q1.len() {
        out.push(format!(
            "Q1: {} minutes, expected {}",
            got.q1.len(),
            expected.q1.len()
        ));
    } else if let Some(((t, v), (_, e))) = got
        .q1
        .iter()
        .zip(&expected.q1)
        .find(|((t, v), (te, e))| t != te || !close(*v, *e))
    {
        out.push(format!("Q1: at {t} got {v}, expected {e}"));
    }
    let sum1: f64 = got.q1.iter().map(|x| x.1).sum();
    let esum1: f64 = expected.q1.iter().map(|x| x.1).sum();
    if !close(sum1, esum1) {
        out.push(format!("Q1: sum {sum1}, expected {esum1}"));
    }
    if got.q2 != expected.q2 {
        out.push(format!(
            "Q2: {} points differ from the expected {} (first: {:?} vs {:?})",
            got.q2.len(),
            expected.q2.len(),
            got.q2.first(),
            expected.q2.first()
        ));
    }
    if got.q3 != expected.q3 {
        out.push(format!(
            "Q3: {} latest values, expected {}; first difference {:?}",
            got.q3.len(),
            expected.q3.len(),
            got.q3.iter().zip(&expected.q3).find(|(a, b)| a != b)
        ));
    }
    if got.q4.len() != expected.q4.len() {
        out.push(format!(
            "Q4: {} (district, hour) groups, expected {}",
            got.q4.len(),
            expected.q4.len()
        ));
    } else if let Some((k, v)) = got
        .q4
        .iter()
        .find(|(k, v)| expected.q4.get(k).is_none_or(|e| !close(**v, *e)))
    {
        out.push(format!(
            "Q4: {k:?} got {v}, expected {:?}",
            expected.q4.get(k)
        ));
    }
    if got.q5 != expected.q5 {
        out.push(format!(
            "Q5: {} sensors, expected {}; first difference {:?}",
            got.q5.len(),
            expected.q5.len(),
            got.q5.iter().zip(&expected.q5).find(|(a, b)| a != b)
        ));
    }
    out
}

/// Parses a value that should be a whole number of tenths.
pub fn to_tenths(v: f64) -> i64 {
    (v * 10.0).round() as i64
}
