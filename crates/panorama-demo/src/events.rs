//! Things that happen: heavy rain that makes flood gauges rise, afternoon
//! showers, an air-quality spike near an industrial park, a feed going
//! silent, a traffic jam on National Road 13, a burst of citizen reports.
//!
//! Events are a pure function of the seed and the time: time is cut into
//! three-hour slots (and days, for showers) and each slot's events come
//! from a hash of (seed, slot). The backfill and the simulator therefore
//! see the same events without sharing any state.

use crate::geography::{DISTRICTS, PARKS, QL13, ROADS};
use crate::noise::Stream;
use chrono::{Datelike, NaiveDate};

/// Vietnam is UTC+7 all year.
pub(crate) const LOCAL_OFFSET_MIN: i64 = 7 * 60;
/// Length of an event slot, minutes.
const SLOT_MIN: i64 = 180;
/// Longest time an event keeps an effect after it starts (rain, through
/// the recession of the rivers), minutes.
const MAX_EFFECT_MIN: i64 = 24 * 60;

/// River gauges respond this long after the rain starts, minutes.
const RIVER_LAG: f64 = 30.0;
/// River recession time constant, minutes.
const RIVER_TAU: f64 = 240.0;
/// Street flooding responds this long after the rain starts, minutes.
const STREET_LAG: f64 = 5.0;
/// Street drainage time constant, minutes.
const STREET_TAU: f64 = 45.0;

/// What happens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EventKind {
    /// Rain centred on a point.
    Rain {
        /// Centre (lon, lat).
        centre: (f64, f64),
        /// Radius of the rain cell, km.
        radius_km: f64,
        /// Peak rate at the centre, mm/h.
        peak_mm_h: f64,
        /// A storm (rare, strong) rather than an afternoon shower.
        storm: bool,
    },
    /// Air quality drops near an industrial park.
    AirSpike {
        /// Index into [`PARKS`].
        park: usize,
        /// PM2.5 multiplier at the park at the peak.
        factor: f64,
    },
    /// A feed stops reporting.
    Silence {
        /// Index into `DemoData::sources`.
        source: usize,
    },
    /// A traffic jam on National Road 13.
    Jam {
        /// Start of the jammed stretch, km from the southern end.
        from_km: f64,
        /// End of the jammed stretch.
        to_km: f64,
    },
    /// Many citizens report something in a district.
    ReportBurst {
        /// District index.
        district: usize,
        /// Extra reports per hour at the peak.
        extra_per_hour: f64,
    },
}

/// An event and when it happens (in minutes since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// What.
    pub kind: EventKind,
    /// First minute.
    pub start: i64,
    /// Length in minutes.
    pub duration: i64,
}

impl Event {
    /// The minute after the last one the event has an effect.
    pub fn effect_end(&self) -> i64 {
        match self.kind {
            EventKind::Rain { .. } => {
                self.start + self.duration + RIVER_LAG as i64 + 5 * RIVER_TAU as i64
            }
            _ => self.start + self.duration,
        }
    }

    /// Whether the event is under way at `m` (not counting after-effects).
    pub fn is_on(&self, m: i64) -> bool {
        m >= self.start && m < self.start + self.duration
    }

    /// 0..1: ramps up over the first quarter hour, down over the last.
    pub fn envelope(&self, m: i64) -> f64 {
        if !self.is_on(m) {
            return 0.0;
        }
        let ramp = (self.duration as f64 / 4.0).clamp(1.0, 15.0);
        let t = (m - self.start) as f64;
        let left = (self.start + self.duration - m) as f64;
        (t / ramp).min(left / ramp).min(1.0)
    }

    /// Rain rate at the centre, mm/h, at `m`.
    pub fn rain_rate(&self, m: i64) -> f64 {
        match self.kind {
            EventKind::Rain { peak_mm_h, .. } if self.is_on(m) => {
                let s =
                    (std::f64::consts::PI * (m - self.start) as f64 / self.duration as f64).sin();
                peak_mm_h * s * s
            }
            _ => 0.0,
        }
    }

    /// Total rain at the centre, mm.
    fn rain_total(&self) -> f64 {
        match self.kind {
            // ∫ peak·sin²(πt/D) dt over D minutes, in mm (rate is per hour).
            EventKind::Rain { peak_mm_h, .. } => peak_mm_h * self.duration as f64 / 120.0,
            _ => 0.0,
        }
    }

    /// Share of the rain fallen `t` minutes after the start, 0..1.
    fn fallen(&self, t: f64) -> f64 {
        let d = self.duration as f64;
        if t <= 0.0 {
            0.0
        } else if t >= d {
            1.0
        } else {
            t / d - (std::f64::consts::TAU * t / d).sin() / std::f64::consts::TAU
        }
    }

    /// Response of a water level to this rain at `m`: rises as the rain
    /// falls (after `lag`), then recedes with time constant `tau`.
    fn response(&self, m: i64, lag: f64, tau: f64, metres_per_mm: f64) -> f64 {
        let t = (m - self.start) as f64 - lag;
        if t <= 0.0 {
            return 0.0;
        }
        let d = self.duration as f64;
        let recession = if t > d { (-(t - d) / tau).exp() } else { 1.0 };
        self.rain_total() * metres_per_mm * self.fallen(t) * recession
    }

    /// Rise of a river gauge at the rain's centre, m.
    pub fn river_rise(&self, m: i64) -> f64 {
        self.response(m, RIVER_LAG, RIVER_TAU, 0.015)
    }

    /// Water depth in a flood-prone street at the rain's centre, m.
    pub fn street_depth(&self, m: i64) -> f64 {
        self.response(m, STREET_LAG, STREET_TAU, 0.006)
    }
}

/// What the event schedule needs to know about the demo.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventParams {
    /// The demo's seed.
    pub seed: u64,
    /// Sources a silence may hit.
    pub silencable: Vec<usize>,
    /// Length of National Road 13, km.
    pub ql13_km: f64,
}

impl EventParams {
    /// Parameters for a demo.
    pub fn new(seed: u64, silencable: Vec<usize>) -> Self {
        let ql13_km = ROADS.get(QL13).map_or(0.0, |l| l.length_km());
        Self {
            seed,
            silencable,
            ql13_km,
        }
    }
}

/// The local calendar month (1–12) of a local day number.
pub(crate) fn month_of_day(day: i64) -> u32 {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .map_or(1, |d| d.month())
}

/// The local day (days since 1970-01-01 in UTC+7) of a minute.
pub(crate) fn local_day(m: i64) -> i64 {
    (m + LOCAL_OFFSET_MIN).div_euclid(1440)
}

/// The events starting in one three-hour slot. Slots are aligned to local
/// time: slot 2 of a day is 06:00–09:00, slot 5 is 15:00–18:00.
fn slot_events(p: &EventParams, k: i64, out: &mut Vec<Event>) {
    let start = k * SLOT_MIN - LOCAL_OFFSET_MIN;
    let local_slot = k.rem_euclid(8);
    let month = month_of_day(local_day(start));
    let rainy = (5..=11).contains(&month);
    let mut s = Stream::new(p.seed, "slot", k);

    // A storm: heavy rain over one district, gauges rise after it.
    let storm_p = if rainy { 0.07 } else { 0.015 };
    if s.next_f64() < storm_p {
        let d = s.int(0, DISTRICTS.len() as i64) as usize;
        let site = DISTRICTS.get(d).map_or((106.65, 11.1), |x| x.site);
        let centre = (site.0 + s.range(-0.04, 0.04), site.1 + s.range(-0.04, 0.04));
        out.push(Event {
            kind: EventKind::Rain {
                centre,
                radius_km: 12.0,
                peak_mm_h: s.range(40.0, 90.0),
                storm: true,
            },
            start: start + s.int(0, SLOT_MIN),
            duration: s.int(60, 151),
        });
    }
    // Air quality drops near an industrial park.
    if s.next_f64() < 0.12 {
        let park = s.weighted(PARKS.iter().map(|x| x.weight));
        out.push(Event {
            kind: EventKind::AirSpike {
                park,
                factor: s.range(2.5, 4.5),
            },
            start: start + s.int(0, SLOT_MIN),
            duration: s.int(60, 181),
        });
    }
    // A feed goes silent.
    if s.next_f64() < 0.10 && !p.silencable.is_empty() {
        let i = s.int(0, p.silencable.len() as i64) as usize;
        if let Some(source) = p.silencable.get(i) {
            out.push(Event {
                kind: EventKind::Silence { source: *source },
                start: start + s.int(0, SLOT_MIN),
                duration: s.int(20, 91),
            });
        }
    }
    // A jam on National Road 13, mostly in the rush hours.
    let rush = local_slot == 2 || local_slot == 5;
    let jam_p = if rush { 0.5 } else { 0.05 };
    if s.next_f64() < jam_p && p.ql13_km > 0.0 {
        let offset = match local_slot {
            2 => s.int(30, 91),  // 06:30–07:30
            5 => s.int(75, 151), // 16:15–17:30
            _ => s.int(0, SLOT_MIN),
        };
        let centre = s.range(0.0, p.ql13_km);
        let half = s.range(1.5, 4.0);
        out.push(Event {
            kind: EventKind::Jam {
                from_km: centre - half,
                to_km: centre + half,
            },
            start: start + offset,
            duration: s.int(40, 121),
        });
    }
    // A burst of citizen reports.
    if s.next_f64() < 0.06 {
        let district = s.weighted(DISTRICTS.iter().map(|d| d.population));
        out.push(Event {
            kind: EventKind::ReportBurst {
                district,
                extra_per_hour: s.range(20.0, 60.0),
            },
            start: start + s.int(0, SLOT_MIN),
            duration: s.int(60, 181),
        });
    }
}

/// Afternoon showers of one local day, one chance per district; common in
/// the rainy season (May to November).
fn day_showers(p: &EventParams, day: i64, out: &mut Vec<Event>) {
    const CHANCE: [f64; 12] = [
        0.02, 0.01, 0.03, 0.10, 0.35, 0.45, 0.45, 0.50, 0.55, 0.50, 0.30, 0.08,
    ];
    let month = month_of_day(day);
    let chance = CHANCE
        .get((month as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    let midnight = day * 1440 - LOCAL_OFFSET_MIN;
    for (d, def) in DISTRICTS.iter().enumerate() {
        let mut s = Stream::new(p.seed, "shower", day * 16 + d as i64);
        if s.next_f64() >= chance {
            continue;
        }
        let centre = (
            def.site.0 + s.range(-0.03, 0.03),
            def.site.1 + s.range(-0.03, 0.03),
        );
        out.push(Event {
            kind: EventKind::Rain {
                centre,
                radius_km: 7.0,
                peak_mm_h: s.range(8.0, 35.0),
                storm: false,
            },
            start: midnight + s.int(13 * 60, 18 * 60),
            duration: s.int(30, 91),
        });
    }
}

/// Every event with an effect somewhere in minutes `[from, to)`.
pub(crate) fn events_between(p: &EventParams, from: i64, to: i64) -> Vec<Event> {
    let mut all = Vec::new();
    let first_slot = (from - MAX_EFFECT_MIN + LOCAL_OFFSET_MIN).div_euclid(SLOT_MIN);
    let last_slot = (to + LOCAL_OFFSET_MIN).div_euclid(SLOT_MIN);
    for k in first_slot..=last_slot {
        slot_events(p, k, &mut all);
    }
    for day in local_day(from - MAX_EFFECT_MIN)..=local_day(to) {
        day_showers(p, day, &mut all);
    }
    all.retain(|e| e.start < to && e.effect_end() > from);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EventParams {
        EventParams::new(74, (0..80).collect())
    }

    #[test]
    fn calendar_helpers() {
        // 2024-04-30T17:30Z is 2024-05-01T00:30 in Vietnam.
        let m = 1_714_498_200 / 60;
        assert_eq!(month_of_day(local_day(m)), 5);
        assert_eq!(month_of_day(0), 1);
    }

    #[test]
    fn a_week_has_every_kind_of_event() {
        // A week in the rainy season of 2026.
        let from = 1_790_000_000 / 60;
        let ev = events_between(&params(), from, from + 7 * 1440);
        let has = |f: fn(&EventKind) -> bool| ev.iter().any(|e| f(&e.kind));
        assert!(has(|k| matches!(k, EventKind::Rain { storm: true, .. })));
        assert!(has(|k| matches!(k, EventKind::Rain { storm: false, .. })));
        assert!(has(|k| matches!(k, EventKind::AirSpike { .. })));
        assert!(has(|k| matches!(k, EventKind::Silence { .. })));
        assert!(has(|k| matches!(k, EventKind::Jam { .. })));
        assert!(has(|k| matches!(k, EventKind::ReportBurst { .. })));
    }

    #[test]
    fn windows_agree() {
        // The events seen through a small window are the ones seen through
        // a large window that overlap it.
        let p = params();
        let from = 1_790_000_000 / 60;
        let big = events_between(&p, from, from + 3 * 1440);
        for w in (from..from + 3 * 1440).step_by(97) {
            let small = events_between(&p, w, w + 1);
            let expected: Vec<_> = big
                .iter()
                .filter(|e| e.start < w + 1 && e.effect_end() > w)
                .cloned()
                .collect();
            assert_eq!(small.len(), expected.len(), "at {w}");
            for e in &expected {
                assert!(small.contains(e));
            }
        }
    }

    #[test]
    fn rain_raises_and_then_releases_the_water() {
        let e = Event {
            kind: EventKind::Rain {
                centre: (0.0, 0.0),
                radius_km: 10.0,
                peak_mm_h: 60.0,
                storm: true,
            },
            start: 0,
            duration: 120,
        };
        assert_eq!(e.river_rise(0), 0.0);
        let peak = (0..600).map(|m| e.river_rise(m)).fold(0.0, f64::max);
        assert!(peak > 0.5 && peak < 1.5, "{peak}");
        assert!(e.river_rise(e.effect_end()) < 0.02);
        assert!(e.street_depth(100) > 0.1);
        assert!(e.rain_rate(60) > 59.0);
    }
}
