//! Rule evaluation as pure state machines over a stream of values: the
//! same code runs on the live ingest stream and in dry-runs over history,
//! so a dry-run shows exactly what the engine would have done.
//!
//! Times are milliseconds since the epoch, taken from the data
//! (observation times) or, for silence and window expiry, from the tick.
//! A value older than the newest one already seen for its series is late:
//! it may still fill a window, but it never moves the state, so the state
//! always follows the newest value.

use crate::model::WindowAgg;
use std::collections::VecDeque;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The condition started to hold: open an alert.
    Fire,
    /// The condition stopped holding: resolve the alert.
    Clear,
    /// An event arrived while the alert was already open.
    Repeat,
}

/// A state change, at the time of the data that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// What changed.
    pub edge: Edge,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The value (or metric) that caused it.
    pub value: Option<f64>,
}

impl Transition {
    fn new(edge: Edge, at_ms: i64, value: Option<f64>) -> Option<Self> {
        Some(Self { edge, at_ms, value })
    }
}

/// A level crossing with hysteresis and minimum durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trigger {
    /// Fires above `level` (else below).
    pub above: bool,
    /// Firing level (strict).
    pub level: f64,
    /// Clearing level (strict); without it, clears once no longer past `level`.
    pub clear: Option<f64>,
    /// How long the condition must hold before firing.
    pub hold_ms: i64,
    /// How long the clear condition must hold before clearing.
    pub clear_hold_ms: i64,
}

impl Trigger {
    /// Whether `v` is past the firing level.
    pub fn breach(&self, v: f64) -> bool {
        if self.above {
            v > self.level
        } else {
            v < self.level
        }
    }

    /// Whether `v` is past the clearing level.
    pub fn clears(&self, v: f64) -> bool {
        match self.clear {
            Some(c) if self.above => v < c,
            Some(c) => v > c,
            None => !self.breach(v),
        }
    }
}

/// Where a trigger is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not firing.
    Normal,
    /// Past the level, waiting for the minimum duration.
    Pending,
    /// Firing.
    Firing,
    /// Firing, and past the clearing level, waiting for `clear_for`.
    Clearing,
}

/// The state of one trigger over one stream (16 bytes: engines keep one
/// per rule and series).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriggerState {
    /// Where it is.
    pub phase: Phase,
    /// When the current phase began (Pending, Clearing).
    pub since: i64,
}

impl Default for TriggerState {
    fn default() -> Self {
        Self {
            phase: Phase::Normal,
            since: 0,
        }
    }
}

impl TriggerState {
    /// A trigger already firing (an alert that was open before a restart).
    pub fn firing() -> Self {
        Self {
            phase: Phase::Firing,
            since: 0,
        }
    }

    /// Whether it is firing.
    pub fn is_firing(&self) -> bool {
        matches!(self.phase, Phase::Firing | Phase::Clearing)
    }

    /// Feeds one value at time `t` (not older than the previous one).
    #[inline]
    pub fn step(&mut self, trig: &Trigger, t: i64, v: f64) -> Option<Transition> {
        match self.phase {
            Phase::Normal => {
                if !trig.breach(v) {
                    return None;
                }
                if trig.hold_ms <= 0 {
                    self.phase = Phase::Firing;
                    return Transition::new(Edge::Fire, t, Some(v));
                }
                self.phase = Phase::Pending;
                self.since = t;
                None
            }
            Phase::Pending => {
                if !trig.breach(v) {
                    self.phase = Phase::Normal;
                    return None;
                }
                if t - self.since >= trig.hold_ms {
                    self.phase = Phase::Firing;
                    return Transition::new(Edge::Fire, t, Some(v));
                }
                None
            }
            Phase::Firing | Phase::Clearing => {
                if !trig.clears(v) {
                    self.phase = Phase::Firing;
                    return None;
                }
                if self.phase == Phase::Firing {
                    self.since = t;
                }
                if t - self.since >= trig.clear_hold_ms {
                    self.phase = Phase::Normal;
                    return Transition::new(Edge::Clear, t, Some(v));
                }
                self.phase = Phase::Clearing;
                None
            }
        }
    }
}

/// What a series rule compares with its trigger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// The value itself.
    Value,
    /// The change within a window: newest − oldest value (`rise`), or
    /// oldest − newest (`fall`, a positive amount when falling).
    Change {
        /// Window length.
        window_ms: i64,
        /// Rising (else falling).
        rise: bool,
    },
    /// An aggregate over a window.
    Aggregate {
        /// Aggregation.
        agg: WindowAgg,
        /// Window length.
        window_ms: i64,
        /// Values the window must hold before it counts.
        min_count: u32,
    },
}

impl Metric {
    fn window_ms(&self) -> Option<i64> {
        match *self {
            Self::Value => None,
            Self::Change { window_ms, .. } | Self::Aggregate { window_ms, .. } => Some(window_ms),
        }
    }
}

/// A condition over one numeric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesEval {
    /// What is compared.
    pub metric: Metric,
    /// With what.
    pub trigger: Trigger,
}

/// The state of a series condition over one series. Kept small: a
/// plain threshold needs only the time and the trigger; windows live in
/// their own allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    /// Time of the newest value seen (`i64::MIN`: none yet).
    last_ms: i64,
    /// The window (window metrics only).
    window: Option<Box<Window>>,
    /// The trigger.
    pub trigger: TriggerState,
}

impl Default for SeriesState {
    fn default() -> Self {
        Self {
            last_ms: i64::MIN,
            window: None,
            trigger: TriggerState::default(),
        }
    }
}

/// Values in a window, oldest first, with their running sum.
#[derive(Debug, Clone, Default, PartialEq)]
struct Window {
    points: VecDeque<(i64, f64)>,
    /// Sum of the values.
    sum: f64,
    /// Pushes since the sum was last recomputed (keeps rounding error bounded).
    pushes: u32,
}

/// The outcome of feeding one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The state change, if any.
    pub transition: Option<Transition>,
    /// The metric computed (None when late or the window is too thin).
    pub metric: Option<f64>,
    /// The value was older than the newest seen and was not evaluated.
    pub late: bool,
}

impl SeriesState {
    /// A state whose trigger is already firing.
    pub fn firing() -> Self {
        Self {
            trigger: TriggerState::firing(),
            ..Self::default()
        }
    }

    /// Number of values in the window.
    pub fn window_len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.points.len())
    }

    fn metric(&self, m: &Metric, v: f64) -> Option<f64> {
        metric_of(m, self.window.as_deref(), v)
    }
}

/// The metric of value `v` given the window it was added to.
#[inline]
fn metric_of(m: &Metric, w: Option<&Window>, v: f64) -> Option<f64> {
    match *m {
        Metric::Value => Some(v),
        Metric::Change { rise, .. } => {
            let w = w?;
            let (&(_, first), &(_, last)) = (w.points.front()?, w.points.back()?);
            Some(if rise { last - first } else { first - last })
        }
        Metric::Aggregate { agg, min_count, .. } => {
            let w = w?;
            let n = w.points.len();
            if n == 0 || n < min_count as usize {
                return None;
            }
            let vals = w.points.iter().map(|(_, v)| *v);
            Some(match agg {
                WindowAgg::Avg => w.sum / n as f64,
                WindowAgg::Sum => w.sum,
                WindowAgg::Count => n as f64,
                WindowAgg::Min => vals.fold(f64::INFINITY, f64::min),
                WindowAgg::Max => vals.fold(f64::NEG_INFINITY, f64::max),
            })
        }
    }
}

impl Window {
    #[inline]
    fn insert(&mut self, t: i64, v: f64) {
        self.sum += v;
        self.pushes += 1;
        // Usually at the back; late values go to their place in time.
        if self.points.back().is_none_or(|(wt, _)| *wt <= t) {
            self.points.push_back((t, v));
            return;
        }
        let pos = self
            .points
            .iter()
            .rposition(|(wt, _)| *wt <= t)
            .map_or(0, |p| p + 1);
        self.points.insert(pos, (t, v));
    }

    #[inline]
    fn evict(&mut self, newest: i64, window_ms: i64) {
        while let Some(&(t, v)) = self.points.front() {
            if t > newest - window_ms {
                break;
            }
            self.points.pop_front();
            self.sum -= v;
        }
        if self.pushes >= 256 || self.points.is_empty() {
            self.sum = self.points.iter().map(|(_, v)| v).sum();
            self.pushes = 0;
        }
    }
}

impl SeriesEval {
    /// Feeds one value at time `t`.
    pub fn observe(&self, st: &mut SeriesState, t: i64, v: f64) -> Step {
        let window = self.metric.window_ms();
        let last = st.last_ms;
        if t < last {
            if let Some(w) = window
                && t > last - w
            {
                st.window.get_or_insert_default().insert(t, v);
            }
            return Step {
                transition: None,
                metric: None,
                late: true,
            };
        }
        st.last_ms = t;
        if let Some(w) = window {
            let win = st.window.get_or_insert_default();
            win.insert(t, v);
            win.evict(t, w);
        }
        let metric = st.metric(&self.metric, v);
        let transition = metric.and_then(|m| st.trigger.step(&self.trigger, t, m));
        Step {
            transition,
            metric,
            late: false,
        }
    }

    /// Length of this condition's window (None: the value itself).
    pub fn window_ms(&self) -> Option<i64> {
        self.metric.window_ms()
    }

    /// Steps `trigger` with a value that `shared` has just taken and found
    /// not late; `shared` must have this condition's window length. Same
    /// result as [`SeriesEval::observe`] on a state that saw the same values.
    #[inline]
    pub fn step_shared(
        &self,
        shared: &SharedSeries,
        trigger: &mut TriggerState,
        t: i64,
        v: f64,
    ) -> Option<Transition> {
        let metric = metric_of(&self.metric, shared.window.as_ref(), v)?;
        trigger.step(&self.trigger, t, metric)
    }
}

/// What a set of plain value conditions (no window) at rest lets pass: a
/// value at most the lowest level of the "above" triggers and at least
/// the highest level of the "below" ones breaches none of them, so it
/// changes none of their states and the engine need not step them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calm {
    /// Whether the bounds were computed (else nothing is skipped).
    known: bool,
    /// Some condition is not at rest (pending, firing, clearing).
    busy: bool,
    /// Lowest level of the "above" triggers.
    above: f64,
    /// Highest level of the "below" triggers.
    below: f64,
}

impl Default for Calm {
    /// Unknown: every value is stepped.
    fn default() -> Self {
        Self {
            known: false,
            busy: false,
            above: f64::INFINITY,
            below: f64::NEG_INFINITY,
        }
    }
}

impl Calm {
    /// Bounds to compute by [`Calm::add`]ing every condition of the set.
    pub fn start() -> Self {
        Self {
            known: true,
            ..Self::default()
        }
    }

    /// Takes one condition of the set, with its state after the last step.
    #[inline]
    pub fn add(&mut self, eval: &SeriesEval, state: &TriggerState) {
        if eval.metric != Metric::Value || state.phase != Phase::Normal {
            self.busy = true;
        } else if eval.trigger.above {
            self.above = self.above.min(eval.trigger.level);
        } else {
            self.below = self.below.max(eval.trigger.level);
        }
    }

    /// Whether `v` changes no state of the set.
    #[inline]
    pub fn holds(&self, v: f64) -> bool {
        self.known && !self.busy && v <= self.above && v >= self.below
    }
}

/// The part of [`SeriesState`] that does not depend on the trigger: the
/// newest time and the window. Conditions over one series with the same
/// window length, whose states started together, see the same values, so
/// the engine keeps one of these for all of them (one late check and one
/// window update per value instead of one per condition) and only a
/// [`TriggerState`] per condition.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSeries {
    /// Time of the newest value seen (`i64::MIN`: none yet).
    last_ms: i64,
    /// Window length (None: no window).
    window_ms: Option<i64>,
    /// The window (window metrics only).
    window: Option<Window>,
}

impl SharedSeries {
    /// Nothing seen yet, for conditions with this window length.
    pub fn new(window_ms: Option<i64>) -> Self {
        Self {
            last_ms: i64::MIN,
            window_ms,
            window: window_ms.map(|_| Window::default()),
        }
    }

    /// Window length (None: no window).
    pub fn window_ms(&self) -> Option<i64> {
        self.window_ms
    }

    /// Number of values in the window.
    pub fn window_len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.points.len())
    }

    /// Takes one value at time `t`; returns false when it is late (older
    /// than the newest seen): it may fill the window but moves no trigger.
    #[inline]
    pub fn push(&mut self, t: i64, v: f64) -> bool {
        let last = self.last_ms;
        if t < last {
            if let (Some(w), Some(win)) = (self.window_ms, self.window.as_mut())
                && t > last - w
            {
                win.insert(t, v);
            }
            return false;
        }
        self.last_ms = t;
        if let (Some(w), Some(win)) = (self.window_ms, self.window.as_mut()) {
            win.insert(t, v);
            win.evict(t, w);
        }
        true
    }
}

/// Events counted in a sliding window (`count_in_area`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountState {
    times: VecDeque<i64>,
    /// Whether it is firing.
    pub firing: bool,
}

impl CountState {
    /// Events in the window.
    pub fn count(&self) -> usize {
        self.times.len()
    }

    fn evict(&mut self, newest: i64, window_ms: i64) {
        while self.times.front().is_some_and(|t| *t <= newest - window_ms) {
            self.times.pop_front();
        }
    }

    /// Adds an event at `t`; fires when the window holds `at_least` events.
    pub fn event(&mut self, t: i64, window_ms: i64, at_least: u32) -> Option<Transition> {
        let newest = self.times.back().copied().unwrap_or(t).max(t);
        if t <= newest - window_ms {
            return None;
        }
        let pos = self
            .times
            .iter()
            .rposition(|x| *x <= t)
            .map_or(0, |p| p + 1);
        self.times.insert(pos, t);
        self.evict(newest, window_ms);
        let n = self.times.len();
        if !self.firing && n >= at_least as usize {
            self.firing = true;
            return Transition::new(Edge::Fire, t, Some(n as f64));
        }
        None
    }

    /// Moves the window's end to `now`; clears when fewer than `at_least` remain.
    pub fn tick(&mut self, now: i64, window_ms: i64, at_least: u32) -> Option<Transition> {
        self.evict(now, window_ms);
        let n = self.times.len();
        if self.firing && n < at_least as usize {
            self.firing = false;
            return Transition::new(Edge::Clear, now, Some(n as f64));
        }
        None
    }

    /// When the oldest event leaves the window (for dry-runs).
    pub fn next_expiry(&self, window_ms: i64) -> Option<i64> {
        self.times.front().map(|t| t + window_ms)
    }
}

/// Silence of an entity (`freshness`, `of = "entity"`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SilenceState {
    /// Time of the newest sign of life.
    pub last_ms: Option<i64>,
    /// Whether it is firing.
    pub firing: bool,
}

impl SilenceState {
    /// A sign of life at `t`; clears a firing silence.
    pub fn seen(&mut self, t: i64) -> Option<Transition> {
        self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        if self.firing {
            self.firing = false;
            return Transition::new(Edge::Clear, t, None);
        }
        None
    }

    /// Fires when nothing was seen for longer than `max_ms` before `now`.
    pub fn tick(&mut self, now: i64, max_ms: i64) -> Option<Transition> {
        let last = self.last_ms?;
        if !self.firing && now - last > max_ms {
            self.firing = true;
            return Transition::new(Edge::Fire, now, Some(((now - last) / 1000) as f64));
        }
        None
    }
}

/// Events in a zone (`in_zone`): fires with the first, repeats with the
/// next, clears after a quiet period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ZoneState {
    /// Time of the newest event.
    pub last_ms: Option<i64>,
    /// Whether it is firing.
    pub firing: bool,
}

impl ZoneState {
    /// An event at `t`.
    pub fn event(&mut self, t: i64, value: Option<f64>) -> Option<Transition> {
        self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        if self.firing {
            return Transition::new(Edge::Repeat, t, value);
        }
        self.firing = true;
        Transition::new(Edge::Fire, t, value)
    }

    /// Clears when no event came for `quiet_ms` before `now`.
    pub fn tick(&mut self, now: i64, quiet_ms: i64) -> Option<Transition> {
        let last = self.last_ms?;
        if self.firing && now - last >= quiet_ms {
            self.firing = false;
            return Transition::new(Edge::Clear, now, None);
        }
        None
    }
}

/// An indicator's status for one admin unit (`indicator_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatusState {
    /// Start of the newest period seen (days since the epoch).
    pub period: Option<i64>,
    /// Whether it is firing.
    pub firing: bool,
}

impl StatusState {
    /// A value for the period starting on day `period`; values of older
    /// periods than the newest seen are ignored.
    pub fn observe(
        &mut self,
        period: i64,
        breach: bool,
        at_ms: i64,
        value: f64,
    ) -> Option<Transition> {
        if self.period.is_some_and(|p| period < p) {
            return None;
        }
        self.period = Some(period);
        match (self.firing, breach) {
            (false, true) => {
                self.firing = true;
                Transition::new(Edge::Fire, at_ms, Some(value))
            }
            (true, false) => {
                self.firing = false;
                Transition::new(Edge::Clear, at_ms, Some(value))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn water() -> SeriesEval {
        SeriesEval {
            metric: Metric::Value,
            trigger: Trigger {
                above: true,
                level: 2.5,
                clear: Some(2.3),
                hold_ms: 10 * MIN,
                clear_hold_ms: 0,
            },
        }
    }

    /// Runs a stream of (minute, value) and returns (edge, minute) pairs.
    fn run(e: &SeriesEval, st: &mut SeriesState, points: &[(i64, f64)]) -> Vec<(Edge, i64)> {
        points
            .iter()
            .filter_map(|&(m, v)| e.observe(st, m * MIN, v).transition)
            .map(|t| (t.edge, t.at_ms / MIN))
            .collect()
    }

    #[test]
    fn water_above_2_5_for_10_minutes_clears_below_2_3() {
        let e = water();
        let mut st = SeriesState::default();
        let edges = run(
            &e,
            &mut st,
            &[
                (0, 2.4),
                (1, 2.6),  // pending since 1
                (5, 2.7),  // 4 min
                (10, 2.8), // 9 min: not yet
                (11, 2.6), // 10 min: fires
                (12, 2.4), // inside the hysteresis band: still firing
                (13, 2.3), // exactly the clear level: still firing
                (14, 2.29),
            ],
        );
        assert_eq!(edges, vec![(Edge::Fire, 11), (Edge::Clear, 14)]);
    }

    #[test]
    fn boundaries_are_strict() {
        let e = SeriesEval {
            metric: Metric::Value,
            trigger: Trigger {
                hold_ms: 0,
                ..water().trigger
            },
        };
        let mut st = SeriesState::default();
        assert_eq!(run(&e, &mut st, &[(0, 2.5), (1, 2.5)]), vec![]);
        assert_eq!(run(&e, &mut st, &[(2, 2.5000001)]), vec![(Edge::Fire, 2)]);
        assert_eq!(run(&e, &mut st, &[(3, 2.3)]), vec![]);
        assert_eq!(run(&e, &mut st, &[(4, 2.2999999)]), vec![(Edge::Clear, 4)]);
    }

    #[test]
    fn a_dip_during_the_duration_restarts_it() {
        let e = water();
        let mut st = SeriesState::default();
        let edges = run(
            &e,
            &mut st,
            &[(0, 2.6), (6, 2.6), (7, 2.5), (8, 2.6), (17, 2.6), (18, 2.6)],
        );
        assert_eq!(edges, vec![(Edge::Fire, 18)], "10 minutes from minute 8");
    }

    #[test]
    fn late_values_never_move_the_state() {
        let e = water();
        let mut st = SeriesState::default();
        assert_eq!(
            run(&e, &mut st, &[(0, 2.6), (20, 2.6)]),
            vec![(Edge::Fire, 20)]
        );
        // A late low value from minute 10 arrives: the newest says 2.6.
        let s = e.observe(&mut st, 10 * MIN, 1.0);
        assert!(s.late && s.transition.is_none());
        assert!(st.trigger.is_firing());
        // Equal time is not late: it is the newest value.
        assert_eq!(run(&e, &mut st, &[(20, 2.0)]), vec![(Edge::Clear, 20)]);
    }

    #[test]
    fn below_without_clear_level_clears_at_the_level() {
        let e = SeriesEval {
            metric: Metric::Value,
            trigger: Trigger {
                above: false,
                level: 10.0,
                clear: None,
                hold_ms: 0,
                clear_hold_ms: 2 * MIN,
            },
        };
        let mut st = SeriesState::default();
        let edges = run(
            &e,
            &mut st,
            &[(0, 9.0), (1, 10.0), (2, 9.5), (3, 10.0), (5, 10.0)],
        );
        assert_eq!(
            edges,
            vec![(Edge::Fire, 0), (Edge::Clear, 5)],
            "clear_for restarts on a relapse"
        );
    }

    #[test]
    fn aqi_one_hour_average_above_150() {
        let e = SeriesEval {
            metric: Metric::Aggregate {
                agg: WindowAgg::Avg,
                window_ms: 60 * MIN,
                min_count: 1,
            },
            trigger: Trigger {
                above: true,
                level: 150.0,
                clear: None,
                hold_ms: 0,
                clear_hold_ms: 0,
            },
        };
        let mut st = SeriesState::default();
        // 100 at minute 0, then 200 at 30: average 150, not above.
        assert_eq!(run(&e, &mut st, &[(0, 100.0), (30, 200.0)]), vec![]);
        // 60 minutes after minute 0 the first value leaves the window: 200 alone.
        assert_eq!(run(&e, &mut st, &[(60, 200.0)]), vec![(Edge::Fire, 60)]);
        assert_eq!(st.window_len(), 2);
        assert_eq!(
            run(&e, &mut st, &[(89, 20.0)]),
            vec![(Edge::Clear, 89)],
            "(200 + 200 + 20) / 3 = 140 clears"
        );
    }

    #[test]
    fn rate_of_change_rising_and_falling() {
        let rise = SeriesEval {
            metric: Metric::Change {
                window_ms: 30 * MIN,
                rise: true,
            },
            trigger: Trigger {
                above: true,
                level: 0.5,
                clear: Some(0.2),
                hold_ms: 0,
                clear_hold_ms: 0,
            },
        };
        let mut st = SeriesState::default();
        let edges = run(
            &rise,
            &mut st,
            &[(0, 1.0), (10, 1.3), (20, 1.6), (40, 1.9), (50, 1.95)],
        );
        // +0.6 within 20 min fires; at 40 the window holds 20 and 40 (+0.3,
        // inside the band); at 50 it holds 40 and 50: +0.05 clears.
        assert_eq!(edges, vec![(Edge::Fire, 20), (Edge::Clear, 50)]);
        let fall = SeriesEval {
            metric: Metric::Change {
                window_ms: 30 * MIN,
                rise: false,
            },
            ..rise
        };
        let mut st = SeriesState::default();
        assert_eq!(
            run(&fall, &mut st, &[(0, 2.0), (10, 1.4)]),
            vec![(Edge::Fire, 10)]
        );
    }

    #[test]
    fn counts_in_a_window_fire_and_expire() {
        let mut c = CountState::default();
        let w = 60 * MIN;
        assert_eq!(c.event(0, w, 3), None);
        assert_eq!(c.event(10 * MIN, w, 3), None);
        assert_eq!(c.event(20 * MIN, w, 3).map(|t| t.edge), Some(Edge::Fire));
        assert_eq!(c.tick(59 * MIN, w, 3), None);
        // The event at 0 leaves at exactly 60 minutes.
        assert_eq!(c.tick(60 * MIN, w, 3).map(|t| t.edge), Some(Edge::Clear));
        assert_eq!(c.count(), 2);
        // A late event inside the window counts.
        assert_eq!(c.event(15 * MIN, w, 3).map(|t| t.edge), Some(Edge::Fire));
        // One that is already out of the window does not.
        assert_eq!(c.event(-5 * MIN, w, 3), None);
    }

    #[test]
    fn silence_fires_past_the_limit_and_clears_with_data() {
        let mut s = SilenceState::default();
        assert_eq!(
            s.tick(100 * MIN, 15 * MIN),
            None,
            "never seen: no judgement"
        );
        s.seen(0);
        assert_eq!(
            s.tick(15 * MIN, 15 * MIN),
            None,
            "exactly at the limit is not late"
        );
        assert_eq!(
            s.tick(15 * MIN + 1, 15 * MIN).map(|t| t.edge),
            Some(Edge::Fire)
        );
        assert_eq!(s.tick(30 * MIN, 15 * MIN), None, "fires once");
        assert_eq!(s.seen(31 * MIN).map(|t| t.edge), Some(Edge::Clear));
    }

    #[test]
    fn zone_events_fire_repeat_and_clear_when_quiet() {
        let mut z = ZoneState::default();
        assert_eq!(z.event(0, None).map(|t| t.edge), Some(Edge::Fire));
        assert_eq!(z.event(MIN, None).map(|t| t.edge), Some(Edge::Repeat));
        assert_eq!(z.tick(60 * MIN, 60 * MIN), None);
        assert_eq!(
            z.tick(61 * MIN, 60 * MIN).map(|t| t.edge),
            Some(Edge::Clear)
        );
    }

    #[test]
    fn indicator_status_follows_the_newest_period() {
        let mut s = StatusState::default();
        assert_eq!(
            s.observe(100, true, 0, 1.0).map(|t| t.edge),
            Some(Edge::Fire)
        );
        assert_eq!(s.observe(90, false, 1, 1.0), None, "an older period");
        assert_eq!(
            s.observe(100, false, 2, 1.0).map(|t| t.edge),
            Some(Edge::Clear),
            "a revision"
        );
    }

    fn stream() -> impl Strategy<Value = Vec<(i64, f64)>> {
        prop::collection::vec((0i64..5, 0.0f64..5.0), 1..80).prop_map(|steps| {
            let mut t = 0;
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t += dt * MIN;
                    (t, (v * 10.0).round() / 10.0)
                })
                .collect()
        })
    }

    proptest! {
        /// Without hysteresis or duration, the state is the last value's breach.
        #[test]
        fn plain_threshold_state_is_the_last_breach(points in stream()) {
            let e = SeriesEval { metric: Metric::Value, trigger: Trigger { above: true, level: 2.5, clear: None, hold_ms: 0, clear_hold_ms: 0 } };
            let mut st = SeriesState::default();
            for &(t, v) in &points {
                e.observe(&mut st, t, v);
                prop_assert_eq!(st.trigger.is_firing(), v > 2.5);
            }
        }

        /// Fires and clears alternate; fires only past the level after the
        /// full duration of breaching values; clears only below the clear level.
        #[test]
        fn hysteresis_and_duration_hold(points in stream(), hold in 0i64..20) {
            let e = SeriesEval { metric: Metric::Value, trigger: Trigger { hold_ms: hold * MIN, ..water().trigger } };
            let mut st = SeriesState::default();
            let mut firing = false;
            for (i, &(t, v)) in points.iter().enumerate() {
                if let Some(tr) = e.observe(&mut st, t, v).transition {
                    match tr.edge {
                        Edge::Fire => {
                            prop_assert!(!firing);
                            prop_assert!(v > 2.5);
                            // Every value of the last `hold` minutes breached,
                            // and the run of breaches spans at least `hold`.
                            let run_start = points[..=i].iter().rev().take_while(|(_, v)| *v > 2.5).last().map(|p| p.0);
                            prop_assert!(run_start.is_some_and(|s| t - s >= hold * MIN));
                            firing = true;
                        }
                        Edge::Clear => {
                            prop_assert!(firing);
                            prop_assert!(v < 2.3);
                            firing = false;
                        }
                        Edge::Repeat => prop_assert!(false, "series rules never repeat"),
                    }
                }
                prop_assert_eq!(st.trigger.is_firing(), firing);
            }
        }

        /// The sliding window equals a brute-force computation.
        #[test]
        fn window_aggregates_match_brute_force(points in stream(), w in 1i64..30, agg in 0usize..5) {
            let agg = [WindowAgg::Avg, WindowAgg::Min, WindowAgg::Max, WindowAgg::Sum, WindowAgg::Count][agg];
            let e = SeriesEval {
                metric: Metric::Aggregate { agg, window_ms: w * MIN, min_count: 1 },
                trigger: Trigger { above: true, level: 1e9, clear: None, hold_ms: 0, clear_hold_ms: 0 },
            };
            let mut st = SeriesState::default();
            for (i, &(t, v)) in points.iter().enumerate() {
                let got = e.observe(&mut st, t, v).metric.unwrap();
                let inside: Vec<f64> = points[..=i].iter().filter(|(pt, _)| *pt > t - w * MIN).map(|p| p.1).collect();
                let want = match agg {
                    WindowAgg::Avg => inside.iter().sum::<f64>() / inside.len() as f64,
                    WindowAgg::Sum => inside.iter().sum(),
                    WindowAgg::Count => inside.len() as f64,
                    WindowAgg::Min => inside.iter().cloned().fold(f64::INFINITY, f64::min),
                    WindowAgg::Max => inside.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                };
                prop_assert!((got - want).abs() < 1e-9, "{got} vs {want}");
            }
        }

        /// Skipping plain conditions while `Calm` holds makes exactly the
        /// transitions of stepping them all, late values included.
        #[test]
        fn calm_skips_only_what_would_not_move(
            points in prop::collection::vec((-2i64..5, 0.0f64..5.0), 1..150),
            levels in prop::collection::vec((any::<bool>(), 0.0f64..5.0, 0i64..6, 0i64..3), 1..8),
        ) {
            let mut t = 100 * MIN;
            let stream: Vec<(i64, f64)> = points.iter().map(|&(dt, v)| { t += dt * MIN; (t, (v * 10.0).round() / 10.0) }).collect();
            let evals: Vec<SeriesEval> = levels.iter().map(|&(above, level, hold, clear_hold)| SeriesEval {
                metric: Metric::Value,
                trigger: Trigger { above, level: (level * 10.0).round() / 10.0, clear: (hold % 2 == 0).then_some(if above { level - 0.5 } else { level + 0.5 }), hold_ms: hold * MIN, clear_hold_ms: clear_hold * MIN },
            }).collect();
            let mut alone: Vec<SeriesState> = evals.iter().map(|_| SeriesState::default()).collect();
            let mut shared = SharedSeries::new(None);
            let mut triggers: Vec<TriggerState> = evals.iter().map(|_| TriggerState::default()).collect();
            let mut calm = Calm::default();
            for &(t, v) in &stream {
                let want: Vec<_> = evals.iter().zip(&mut alone).map(|(e, st)| e.observe(st, t, v).transition).collect();
                let newest = shared.push(t, v);
                let mut got = vec![None; evals.len()];
                if !calm.holds(v) {
                    let mut next = Calm::start();
                    for (j, (e, tr)) in evals.iter().zip(&mut triggers).enumerate() {
                        if newest {
                            got[j] = e.step_shared(&shared, tr, t, v);
                        }
                        next.add(e, tr);
                    }
                    calm = next;
                }
                prop_assert_eq!(want, got);
                for (st, tr) in alone.iter().zip(&triggers) {
                    prop_assert_eq!(st.trigger, *tr);
                }
            }
        }

        /// A value of a calm set is skipped when it breaches no level.
        #[test]
        fn calm_holds_exactly_between_the_levels(above in 1.0f64..5.0, below in -5.0f64..0.9, v in -6.0f64..6.0) {
            let plain = |up: bool, level: f64| SeriesEval { metric: Metric::Value, trigger: Trigger { above: up, level, clear: None, hold_ms: 0, clear_hold_ms: 0 } };
            let mut c = Calm::start();
            c.add(&plain(true, above), &TriggerState::default());
            c.add(&plain(false, below), &TriggerState::default());
            let breaches = plain(true, above).trigger.breach(v) || plain(false, below).trigger.breach(v);
            prop_assert_eq!(c.holds(v), !breaches);
            c.add(&plain(true, 9.0), &TriggerState::firing());
            prop_assert!(!c.holds(v), "a firing condition is never skipped");
            prop_assert!(!Calm::default().holds(v), "unknown bounds skip nothing");
        }

        /// Conditions with one window length sharing a `SharedSeries` make
        /// exactly the transitions they make each with its own state, late
        /// and equal-time values included.
        #[test]
        fn shared_state_decides_as_separate_states(
            points in prop::collection::vec((-3i64..5, 0.0f64..5.0), 1..120),
            w in 1i64..30,
            levels in prop::collection::vec((0usize..5, 0.0f64..5.0, 0i64..10), 1..6),
        ) {
            let aggs = [WindowAgg::Avg, WindowAgg::Min, WindowAgg::Max, WindowAgg::Sum, WindowAgg::Count];
            let mut t = 100 * MIN;
            let stream: Vec<(i64, f64)> = points.iter().map(|&(dt, v)| { t += dt * MIN; (t, v) }).collect();
            for windowed in [false, true] {
                let evals: Vec<SeriesEval> = levels.iter().enumerate().map(|(j, &(agg, level, hold))| {
                    let metric = match (windowed, j % 3) {
                        (false, _) => Metric::Value,
                        (true, 0) => Metric::Change { window_ms: w * MIN, rise: agg % 2 == 0 },
                        (true, _) => Metric::Aggregate { agg: aggs[agg], window_ms: w * MIN, min_count: (hold % 3) as u32 },
                    };
                    SeriesEval { metric, trigger: Trigger { above: agg % 2 == 0, level, clear: (hold % 2 == 0).then_some(level * 0.9), hold_ms: hold * MIN, clear_hold_ms: (hold % 4) * MIN } }
                }).collect();
                let mut alone: Vec<SeriesState> = evals.iter().map(|_| SeriesState::default()).collect();
                let mut shared = SharedSeries::new(evals[0].window_ms());
                let mut triggers: Vec<TriggerState> = evals.iter().map(|_| TriggerState::default()).collect();
                for &(t, v) in &stream {
                    let want: Vec<_> = evals.iter().zip(&mut alone).map(|(e, st)| e.observe(st, t, v).transition).collect();
                    let newest = shared.push(t, v);
                    let got: Vec<_> = evals.iter().zip(&mut triggers).map(|(e, tr)| if newest { e.step_shared(&shared, tr, t, v) } else { None }).collect();
                    prop_assert_eq!(want, got);
                    prop_assert_eq!(alone[0].window_len(), shared.window_len());
                    for (st, tr) in alone.iter().zip(&triggers) {
                        prop_assert_eq!(st.trigger, *tr);
                    }
                }
            }
        }

        /// Shuffling in late values never changes the transitions of the
        /// in-order stream they were taken from.
        #[test]
        fn late_values_change_no_transition(points in stream(), late in prop::collection::vec((0usize..80, 0.0f64..5.0), 0..20)) {
            let e = water();
            let mut a = SeriesState::default();
            let plain: Vec<_> = points.iter().filter_map(|&(t, v)| e.observe(&mut a, t, v).transition).collect();
            let mut b = SeriesState::default();
            let mut mixed = Vec::new();
            for (i, &(t, v)) in points.iter().enumerate() {
                mixed.extend(e.observe(&mut b, t, v).transition);
                for &(j, lv) in &late {
                    if j < i && points[j].0 < t {
                        let s = e.observe(&mut b, points[j].0, lv);
                        prop_assert!(s.late);
                        mixed.extend(s.transition);
                    }
                }
            }
            prop_assert_eq!(plain, mixed);
        }
    }
}
