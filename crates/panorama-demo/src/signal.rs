//! The value functions: what each thing reads at a given minute. A value is
//! a pure function of (thing, attribute, minute) and the events under way,
//! so the backfilled history and the live simulator draw one continuous
//! line. Daily rhythms follow local time (UTC+7): rush hours 06:30–08:30
//! and 16:30–18:30, quiet nights, hot afternoons, lights on at dusk.

use crate::events::{Event, EventKind, LOCAL_OFFSET_MIN, local_day, month_of_day};
use crate::geography::{self, PARKS, QL13};
use crate::noise::{hash2, signed, smooth, unit};
use crate::things::{Attr, Kind, Model, Spot};
use panorama_core::Value;

/// Traffic on a weekday, per half hour from 00:00 to 24:00 (peak = 1).
const WEEKDAY: [f64; 49] = [
    0.12, 0.10, 0.08, 0.07, 0.06, 0.06, 0.06, 0.08, 0.12, 0.20, 0.35, 0.55, 0.75, 0.95, 1.00, 1.00,
    1.00, 0.92, 0.72, 0.65, 0.60, 0.60, 0.62, 0.60, 0.55, 0.55, 0.55, 0.58, 0.60, 0.64, 0.68, 0.75,
    0.85, 0.97, 1.00, 1.00, 1.00, 0.92, 0.80, 0.72, 0.62, 0.55, 0.48, 0.40, 0.32, 0.25, 0.20, 0.15,
    0.12,
];
/// Traffic on a Saturday; Sundays are a tenth quieter.
const WEEKEND: [f64; 49] = [
    0.15, 0.12, 0.10, 0.08, 0.07, 0.07, 0.07, 0.08, 0.10, 0.14, 0.20, 0.28, 0.38, 0.48, 0.58, 0.65,
    0.70, 0.74, 0.76, 0.76, 0.75, 0.74, 0.72, 0.70, 0.66, 0.64, 0.64, 0.66, 0.68, 0.70, 0.72, 0.75,
    0.78, 0.80, 0.80, 0.78, 0.75, 0.72, 0.68, 0.64, 0.60, 0.55, 0.50, 0.44, 0.38, 0.32, 0.26, 0.20,
    0.15,
];
/// PM2.5 by month: the dry season (December–April) is dustier.
const AQ_SEASON: [f64; 12] = [
    1.35, 1.30, 1.25, 1.10, 0.95, 0.85, 0.80, 0.80, 0.80, 0.85, 1.00, 1.25,
];
/// Mean air temperature by month, °C.
const TEMP_MEAN: [f64; 12] = [
    26.5, 27.0, 28.5, 29.5, 29.0, 28.0, 27.5, 27.5, 27.3, 27.0, 26.8, 26.3,
];
/// Half the daily temperature range by month, °C.
const TEMP_AMP: [f64; 12] = [4.5, 5.0, 5.0, 4.5, 4.0, 3.5, 3.5, 3.5, 3.5, 3.5, 4.0, 4.2];
/// Rivers run higher late in the rainy season, m.
const RIVER_SEASON: [f64; 12] = [
    0.0, -0.05, -0.10, -0.10, 0.0, 0.05, 0.10, 0.15, 0.25, 0.30, 0.25, 0.10,
];
/// Main (semi-diurnal) tidal period, minutes.
const TIDE_M2: f64 = 745.2;
/// Diurnal tidal period, minutes.
const TIDE_K1: f64 = 1_436.0;
/// Spring–neap cycle, minutes.
const SPRING_NEAP: f64 = 14.765 * 1440.0;

fn by_month(table: &[f64; 12], month: u32) -> f64 {
    table
        .get((month as usize).saturating_sub(1))
        .copied()
        .unwrap_or(1.0)
}

/// A bump centred on hour `c` of width `w` hours, on the 24-hour circle.
fn bump(h: f64, c: f64, w: f64) -> f64 {
    let mut d = (h - c).abs();
    if d > 12.0 {
        d = 24.0 - d;
    }
    (-(d / w) * (d / w)).exp()
}

fn profile(table: &[f64; 49], h: f64) -> f64 {
    let x = (h * 2.0).clamp(0.0, 48.0);
    let i = (x.floor() as usize).min(47);
    let f = x - i as f64;
    let a = table.get(i).copied().unwrap_or(0.0);
    let b = table.get(i + 1).copied().unwrap_or(a);
    a + (b - a) * f
}

fn ramp(x: f64, from: f64, to: f64) -> f64 {
    ((x - from) / (to - from)).clamp(0.0, 1.0)
}

/// A rain cell at one minute: where, how wide, and how strong (`a`, `b`:
/// the rate while it rains, or the water it left in rivers and streets).
#[derive(Debug, Clone, Copy)]
struct Cell {
    centre: (f64, f64),
    radius_km: f64,
    a: f64,
    b: f64,
}

impl Cell {
    /// Weight of the cell at `pos`: 1 at the centre, fading with distance.
    #[inline]
    fn weight(&self, pos: (f64, f64)) -> f64 {
        let d2 = geography::km2(pos, self.centre) / (self.radius_km * self.radius_km);
        if d2 > 9.0 { 0.0 } else { (-d2).exp() }
    }
}

/// Water left in rivers and streets below this (m) is ignored.
const WATER_EPS: f64 = 0.002;

/// Everything about one minute that does not depend on the thing: time of
/// day, season, and the events under way. Computed once per minute and
/// shared by every thing, so each value costs a few arithmetic operations.
#[derive(Debug, Clone, Default)]
pub(crate) struct MinuteCtx {
    /// Minutes since the Unix epoch.
    pub m: i64,
    hour: f64,
    month: u32,
    night: i64,
    traffic: f64,
    aq: f64,
    temp_mean: f64,
    temp_amp: f64,
    temp_shape: f64,
    sun: f64,
    park_town: f64,
    park_industry: f64,
    activity: f64,
    spring: f64,
    river_season: f64,
    /// Cells raining now (`a`: rate, mm/h).
    rain: Vec<Cell>,
    /// Cells whose water is still up (`a`: river rise, `b`: street depth, m).
    water: Vec<Cell>,
    spikes: Vec<((f64, f64), f64)>,
    jams: Vec<(f64, f64, f64)>,
    bursts: Vec<(usize, f64)>,
    silenced: Vec<usize>,
}

impl MinuteCtx {
    /// The context of minute `m`, given the events that overlap it.
    #[cfg(test)]
    pub fn new(m: i64, events: &[Event]) -> Self {
        let mut c = Self::default();
        c.set(m, events);
        c
    }

    /// Reuses this context for minute `m`.
    pub fn set(&mut self, m: i64, events: &[Event]) {
        let local = m + LOCAL_OFFSET_MIN;
        let day = local.div_euclid(1440);
        let hour = local.rem_euclid(1440) as f64 / 60.0;
        // 1970-01-01 was a Thursday; 0 = Monday.
        let dow = (day + 3).rem_euclid(7);
        let month = month_of_day(day);
        self.m = m;
        self.hour = hour;
        self.month = month;
        self.night = local_day(m + 12 * 60);
        self.traffic = match dow {
            5 => profile(&WEEKEND, hour),
            6 => 0.9 * profile(&WEEKEND, hour),
            _ => profile(&WEEKDAY, hour),
        };
        self.aq = (1.0 + 0.3 * bump(hour, 7.5, 1.5) + 0.35 * bump(hour, 20.5, 2.5)
            - 0.25 * bump(hour, 14.0, 3.0))
            * by_month(&AQ_SEASON, month);
        self.temp_mean = by_month(&TEMP_MEAN, month);
        self.temp_amp = by_month(&TEMP_AMP, month);
        self.temp_shape = (std::f64::consts::TAU * (hour - 14.0) / 24.0).cos();
        self.sun = if (6.0..18.2).contains(&hour) {
            (std::f64::consts::PI * (hour - 6.0) / 12.2).sin()
        } else {
            0.0
        };
        self.park_town = (0.15
            + 0.6 * bump(hour, 10.0, 2.0)
            + 0.45 * bump(hour, 14.5, 2.0)
            + 0.75 * bump(hour, 19.0, 1.6))
        .min(0.95);
        self.park_industry = 0.35 + 0.55 * ramp(hour, 6.0, 7.0) * (1.0 - ramp(hour, 17.5, 18.5));
        self.activity =
            (0.1 + 0.9 * (bump(hour, 10.0, 2.5) + 0.8 * bump(hour, 15.0, 2.5))).min(1.0);
        self.spring = 1.0 + 0.3 * (std::f64::consts::TAU * m as f64 / SPRING_NEAP).cos();
        self.river_season = by_month(&RIVER_SEASON, month);
        self.rain.clear();
        self.water.clear();
        self.spikes.clear();
        self.jams.clear();
        self.bursts.clear();
        self.silenced.clear();
        for e in events {
            match &e.kind {
                EventKind::Rain {
                    centre, radius_km, ..
                } => {
                    let (centre, radius_km) = (*centre, *radius_km);
                    let rate = e.rain_rate(m);
                    if rate > 0.0 {
                        self.rain.push(Cell {
                            centre,
                            radius_km,
                            a: rate,
                            b: 0.0,
                        });
                    }
                    let (river, street) = (e.river_rise(m), e.street_depth(m));
                    if river > WATER_EPS || street > WATER_EPS {
                        self.water.push(Cell {
                            centre,
                            radius_km,
                            a: river,
                            b: street,
                        });
                    }
                }
                EventKind::AirSpike { park, factor } => {
                    let env = e.envelope(m);
                    if let (Some(p), true) = (PARKS.get(*park), env > 0.0) {
                        self.spikes.push(((p.lon, p.lat), (factor - 1.0) * env));
                    }
                }
                EventKind::Silence { source } => {
                    if e.is_on(m) {
                        self.silenced.push(*source);
                    }
                }
                EventKind::Jam { from_km, to_km } => {
                    let env = e.envelope(m);
                    if env > 0.0 {
                        self.jams.push((*from_km, *to_km, env));
                    }
                }
                EventKind::ReportBurst {
                    district,
                    extra_per_hour,
                } => {
                    let env = e.envelope(m);
                    if env > 0.0 {
                        self.bursts.push((*district, extra_per_hour * env));
                    }
                }
            }
        }
    }

    /// Whether the feed `source` is silent at this minute.
    pub fn is_silenced(&self, source: usize) -> bool {
        self.silenced.contains(&source)
    }

    /// Rain rate at a place, mm/h.
    fn rate_at(&self, pos: (f64, f64)) -> f64 {
        self.rain.iter().map(|c| c.a * c.weight(pos)).sum()
    }

    /// Water left by rain at a place: (river rise, street depth), m.
    fn water_at(&self, pos: (f64, f64)) -> (f64, f64) {
        self.water.iter().fold((0.0, 0.0), |acc, c| {
            let w = c.weight(pos);
            (acc.0 + c.a * w, acc.1 + c.b * w)
        })
    }

    fn jam_at(&self, spot: Spot) -> f64 {
        match spot {
            Spot::Road(road, at) if road == QL13 => self
                .jams
                .iter()
                .filter(|(from, to, _)| at >= *from && at <= *to)
                .map(|(_, _, env)| *env)
                .fold(0.0, f64::max),
            _ => 0.0,
        }
    }
}

/// US EPA air quality index of a PM2.5 concentration (µg/m³); Vietnam's
/// VN_AQI uses the same breakpoints for PM2.5.
pub(crate) fn aqi_from_pm25(pm25: f64) -> f64 {
    const BP: [(f64, f64, f64, f64); 7] = [
        (0.0, 12.0, 0.0, 50.0),
        (12.0, 35.4, 50.0, 100.0),
        (35.4, 55.4, 100.0, 150.0),
        (55.4, 150.4, 150.0, 200.0),
        (150.4, 250.4, 200.0, 300.0),
        (250.4, 350.4, 300.0, 400.0),
        (350.4, 500.4, 400.0, 500.0),
    ];
    let c = pm25.max(0.0);
    for (clo, chi, ilo, ihi) in BP {
        if c <= chi {
            return (ilo + (ihi - ilo) * (c - clo) / (chi - clo)).round();
        }
    }
    500.0
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn pm25(t: &Model, c: &MinuteCtx) -> f64 {
    let rate = c.rate_at(t.pos);
    let washout = 1.0 - 0.45 * (rate / 20.0).min(1.0);
    let noise = 1.0 + 0.18 * smooth(t.seed, c.m, 30) + 0.05 * signed(hash2(t.seed ^ 1, c.m as u64));
    let mut v = t.base * c.aq * noise * washout;
    for (park, extra) in &c.spikes {
        let d2 = geography::km2(t.pos, *park) / 9.0;
        if d2 < 9.0 {
            v += t.base * extra * (-d2).exp();
        }
    }
    r1(v.max(2.0))
}

/// The number an attribute reads at this minute (text attributes read 0).
pub(crate) fn number(t: &Model, a: Attr, c: &MinuteCtx) -> f64 {
    let m = c.m;
    let s = t.seed;
    match a {
        Attr::Pm25 => pm25(t, c),
        Attr::Aqi => aqi_from_pm25(pm25(t, c)),
        Attr::Pm10 => r1(pm25(t, c) * (1.55 + 0.15 * smooth(s ^ 2, m, 60))),
        Attr::No2 => {
            let industry = if matches!(t.spot, Spot::Park(_)) {
                10.0
            } else {
                0.0
            };
            r1((12.0 + 35.0 * c.traffic + industry) * (1.0 + 0.15 * smooth(s ^ 3, m, 45)))
        }
        Attr::O3 => r1((15.0 + 70.0 * c.sun) * (1.0 + 0.15 * smooth(s ^ 4, m, 60))),
        Attr::WaterLevel => {
            let theta = std::f64::consts::TAU * m as f64 / TIDE_M2 - t.lag;
            let theta2 = std::f64::consts::TAU * m as f64 / TIDE_K1 - t.lag / 2.0;
            let tide = t.extra * (theta.cos() + 0.25 * theta2.cos()) * c.spring;
            let (rise, _) = c.water_at(t.pos);
            r2(t.base + tide + c.river_season + rise + 0.005 * signed(hash2(s, m as u64)))
        }
        Attr::CurrentLevel => {
            let (_, depth) = c.water_at(t.pos);
            r2((depth * t.base).max(0.0))
        }
        Attr::Turbidity => {
            let rate = c.rate_at(t.pos);
            let (rise, _) = c.water_at(t.pos);
            r1(t.base * (1.0 + 0.1 * smooth(s, m, 60)) + 1.5 * rate + 40.0 * rise)
        }
        Attr::Ph => {
            let rate = c.rate_at(t.pos);
            r2(7.0 + 0.3 * smooth(s ^ 3, m, 240) - 0.02 * rate.min(30.0))
        }
        Attr::O2 => {
            let rate = c.rate_at(t.pos);
            let base = if matches!(t.spot, Spot::Park(_)) {
                3.5
            } else {
                5.5
            };
            r2((base + 0.8 * c.sun + 0.4 * smooth(s ^ 4, m, 120) - 0.02 * rate.min(30.0)).max(0.5))
        }
        Attr::WaterTemperature => r1(28.5 + 1.5 * c.sun + 0.3 * smooth(s ^ 5, m, 120)),
        Attr::Conductivity => {
            let rate = c.rate_at(t.pos);
            let industry = if matches!(t.spot, Spot::Park(_)) {
                150.0
            } else {
                0.0
            };
            (120.0 + industry + 20.0 * smooth(s ^ 6, m, 180) - 2.0 * rate.min(30.0)).round()
        }
        Attr::Intensity => {
            let jam = c.jam_at(t.spot);
            let v = t.base * c.traffic * (1.0 + 0.12 * smooth(s, m, 10))
                + 1.5 * unit(hash2(s, m as u64));
            (v * (1.0 - 0.45 * jam)).max(0.0).round()
        }
        Attr::Speed => {
            let jam = c.jam_at(t.spot);
            let rate = c.rate_at(t.pos);
            let p = c.traffic;
            let free = t.extra
                * (1.0 - 0.5 * p * p)
                * (1.0 + 0.05 * smooth(s ^ 5, m, 15))
                * (1.0 - 0.2 * (rate / 30.0).min(1.0));
            let crawl = 5.0 + 7.0 * unit(hash2(s ^ 6, m as u64));
            r1(free * (1.0 - jam) + crawl * jam)
        }
        Attr::Occupancy => {
            let jam = c.jam_at(t.spot);
            r2((0.04 + 0.5 * c.traffic * c.traffic + 0.45 * jam).min(0.98))
        }
        Attr::LAeq => {
            let rate = c.rate_at(t.pos);
            let rain = if rate > 10.0 { 3.0 } else { 0.0 };
            r1(t.base
                + 12.0 * c.traffic
                + 2.5 * smooth(s, m, 20)
                + 0.8 * signed(hash2(s, m as u64))
                + rain)
        }
        Attr::LAmax => r1(number(t, Attr::LAeq, c) + 10.0 + 6.0 * unit(hash2(s ^ 7, m as u64))),
        Attr::Temperature => {
            let rate = c.rate_at(t.pos);
            r1(
                c.temp_mean + c.temp_amp * c.temp_shape + 0.4 * smooth(s, m, 120)
                    - 3.0 * (rate / 15.0).min(1.0),
            )
        }
        Attr::Precipitation => r1(c.rate_at(t.pos)),
        Attr::Humidity => {
            let rate = c.rate_at(t.pos);
            (78.0 - 14.0 * c.temp_shape + 1.2 * rate.min(15.0) + 3.0 * smooth(s ^ 8, m, 90))
                .clamp(35.0, 100.0)
                .round()
        }
        Attr::WindSpeed => {
            let rate = c.rate_at(t.pos);
            r1(
                (1.5 + 1.2 * c.sun + 1.0 * smooth(s ^ 9, m, 30) + 4.0 * (rate / 40.0).min(1.0))
                    .max(0.0),
            )
        }
        Attr::Illuminance => {
            // Lamps switch at dusk and dawn (a few minutes apart), dim late
            // at night, and now and then one fails for a night.
            let t_min = c.hour * 60.0 + t.extra;
            let on = !(345.0..1080.0).contains(&t_min);
            if !on || unit(hash2(s, c.night as u64)) < 0.01 {
                0.0
            } else if !(270.0..1350.0).contains(&t_min) {
                0.6
            } else {
                1.0
            }
        }
        Attr::AvailableSpots => {
            let occ = parking_occupancy(t, c);
            (t.base * (1.0 - occ)).round().clamp(0.0, t.base)
        }
        Attr::ParkingOccupancy => r2(parking_occupancy(t, c)),
        Attr::ReportsLastHour => {
            let burst: f64 = c
                .bursts
                .iter()
                .filter(|(d, _)| *d == t.district)
                .map(|(_, x)| *x)
                .sum();
            (t.base * (1.5 + 5.0 * c.activity) * (1.0 + 0.25 * smooth(s, m, 60)) + burst)
                .max(0.0)
                .round()
        }
        Attr::FloodStatus | Attr::PowerState | Attr::CameraStatus => 0.0,
    }
}

fn parking_occupancy(t: &Model, c: &MinuteCtx) -> f64 {
    let base = if t.extra > 0.5 {
        c.park_industry
    } else {
        c.park_town
    };
    (base * (1.0 + 0.08 * smooth(t.seed, c.m, 30)) + 0.03 * signed(hash2(t.seed, c.m as u64)))
        .clamp(0.0, 1.0)
}

/// The text an attribute reads at this minute.
pub(crate) fn text(t: &Model, a: Attr, c: &MinuteCtx) -> &'static str {
    match a {
        Attr::FloodStatus => {
            let depth = number(t, Attr::CurrentLevel, c);
            if depth >= 0.3 {
                "Danger"
            } else if depth >= 0.15 {
                "Alert"
            } else {
                "Normal"
            }
        }
        Attr::PowerState => {
            if number(t, Attr::Illuminance, c) > 0.0 {
                "on"
            } else {
                "off"
            }
        }
        Attr::CameraStatus => {
            // About one camera-hour in seventy is spent offline.
            if unit(hash2(t.seed, c.m.div_euclid(60) as u64)) < 0.015 {
                "offline"
            } else {
                "online"
            }
        }
        _ => "",
    }
}

/// The value an attribute reads at this minute.
pub(crate) fn value(t: &Model, a: Attr, c: &MinuteCtx) -> Value {
    match a {
        Attr::FloodStatus | Attr::PowerState | Attr::CameraStatus => {
            Value::Text(text(t, a, c).to_string())
        }
        _ => Value::Number(number(t, a, c)),
    }
}

/// Whether a kind's thing reports at this minute (cameras: every hour in
/// the history).
pub(crate) fn reports_in_history(kind: Kind, m: i64) -> bool {
    kind.every_minute() || m.rem_euclid(60) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aqi_breakpoints() {
        assert_eq!(aqi_from_pm25(0.0), 0.0);
        assert_eq!(aqi_from_pm25(12.0), 50.0);
        assert_eq!(aqi_from_pm25(35.4), 100.0);
        assert_eq!(aqi_from_pm25(55.4), 150.0);
        assert_eq!(aqi_from_pm25(1000.0), 500.0);
    }

    #[test]
    fn rush_hours_are_busier_than_nights() {
        // Local midnight starting Monday 2026-11-16 (2026-11-15T17:00Z).
        let monday = 1_794_762_000 / 60;
        let at = |h: i64, min: i64| MinuteCtx::new(monday + h * 60 + min, &[]).traffic;
        assert!(at(7, 30) > 0.95);
        assert!(at(17, 30) > 0.95);
        assert!(at(3, 0) < 0.1);
        assert!(at(12, 0) < 0.7);
    }
}
