//! Things: sensors, cameras and citizen-report counters placed in the
//! districts along real-looking clusters (town centres, industrial parks,
//! main roads, rivers), their entities (Smart Data Models types and
//! attribute names) and the sources (feeds) they report through.

use crate::DemoSource;
use crate::geography::{self, CENTRES, DISTRICTS, Geography, Line, PARKS, Place, RIVERS, ROADS};
use crate::noise::{hash2, mix, str_hash};
use panorama_core::{AttributeSpec, Entity, Source, SourceKind, Timestamp, ValueType};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    AirQuality,
    RiverLevel,
    StreetFlood,
    WaterQuality,
    Traffic,
    Noise,
    Weather,
    Streetlight,
    Parking,
    Camera,
    Reports,
}

/// Every attribute the demo simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Attr {
    Pm25,
    Aqi,
    Pm10,
    No2,
    O3,
    WaterLevel,
    CurrentLevel,
    FloodStatus,
    Turbidity,
    Ph,
    O2,
    WaterTemperature,
    Conductivity,
    Intensity,
    Speed,
    Occupancy,
    LAeq,
    LAmax,
    Temperature,
    Precipitation,
    Humidity,
    WindSpeed,
    Illuminance,
    PowerState,
    AvailableSpots,
    ParkingOccupancy,
    CameraStatus,
    ReportsLastHour,
}

/// How an entity declares one attribute, and whether it is a main
/// attribute (reported every minute and backfilled) or a secondary one
/// (reported every quarter of an hour by the simulator only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrDef {
    pub attr: Attr,
    pub name: &'static str,
    pub ty: ValueType,
    pub unit: Option<&'static str>,
    pub main: bool,
}

const fn num(attr: Attr, name: &'static str, unit: Option<&'static str>, main: bool) -> AttrDef {
    AttrDef {
        attr,
        name,
        ty: ValueType::Number,
        unit,
        main,
    }
}

const fn text(attr: Attr, name: &'static str, main: bool) -> AttrDef {
    AttrDef {
        attr,
        name,
        ty: ValueType::Text,
        unit: None,
        main,
    }
}

/// Where a kind of thing is placed: shares of uniform (anywhere in a
/// district), centres, industrial parks, roads and rivers.
#[derive(Debug, Clone, Copy)]
struct Mix {
    uniform: f64,
    centres: f64,
    parks: f64,
    roads: f64,
    rivers: f64,
}

const fn mixed(uniform: f64, centres: f64, parks: f64, roads: f64, rivers: f64) -> Mix {
    Mix {
        uniform,
        centres,
        parks,
        roads,
        rivers,
    }
}

impl Kind {
    /// The sensor kinds, in the order they are placed.
    pub const SENSORS: [Kind; 9] = [
        Kind::AirQuality,
        Kind::RiverLevel,
        Kind::StreetFlood,
        Kind::WaterQuality,
        Kind::Traffic,
        Kind::Noise,
        Kind::Weather,
        Kind::Streetlight,
        Kind::Parking,
    ];

    /// Smart Data Models entity type.
    pub fn entity_type(self) -> &'static str {
        match self {
            Kind::AirQuality => "AirQualityObserved",
            Kind::RiverLevel => "WaterObserved",
            Kind::StreetFlood => "FloodMonitoring",
            Kind::WaterQuality => "WaterQualityObserved",
            Kind::Traffic => "TrafficFlowObserved",
            Kind::Noise => "NoiseLevelObserved",
            Kind::Weather => "WeatherObserved",
            Kind::Streetlight => "Streetlight",
            Kind::Parking => "OffStreetParking",
            Kind::Camera => "Camera",
            Kind::Reports => "CitizenReportCounter",
        }
    }

    /// Short code used in source ids.
    fn code(self) -> &'static str {
        match self {
            Kind::AirQuality => "air",
            Kind::RiverLevel => "river",
            Kind::StreetFlood => "flood",
            Kind::WaterQuality => "water-quality",
            Kind::Traffic => "traffic",
            Kind::Noise => "noise",
            Kind::Weather => "weather",
            Kind::Streetlight => "streetlight",
            Kind::Parking => "parking",
            Kind::Camera => "camera",
            Kind::Reports => "reports",
        }
    }

    /// Domain of the entities (cameras on roads belong to traffic).
    fn domain(self) -> &'static str {
        match self {
            Kind::AirQuality | Kind::Noise | Kind::WaterQuality => "environment",
            Kind::RiverLevel => "water",
            Kind::StreetFlood | Kind::Weather => "disaster",
            Kind::Traffic | Kind::Parking => "traffic",
            Kind::Streetlight => "urban",
            Kind::Camera => "public-order",
            Kind::Reports => "public-feedback",
        }
    }

    /// Agency that owns the feeds.
    fn owner(self) -> &'static str {
        match self {
            Kind::AirQuality | Kind::Noise | Kind::WaterQuality | Kind::RiverLevel => "so-tn-mt",
            Kind::StreetFlood | Kind::Weather => "bch-pctt-tkcn",
            Kind::Traffic | Kind::Parking => "so-gtvt",
            Kind::Streetlight => "so-xay-dung",
            Kind::Camera => "cong-an-tinh",
            Kind::Reports => "so-tt-tt",
        }
    }

    /// Share of the requested sensor count.
    fn share(self) -> f64 {
        match self {
            Kind::AirQuality => 0.16,
            Kind::RiverLevel => 0.04,
            Kind::StreetFlood => 0.03,
            Kind::WaterQuality => 0.04,
            Kind::Traffic => 0.20,
            Kind::Noise => 0.10,
            Kind::Weather => 0.04,
            Kind::Streetlight => 0.25,
            Kind::Parking => 0.14,
            Kind::Camera | Kind::Reports => 0.0,
        }
    }

    fn placement(self) -> Mix {
        match self {
            Kind::AirQuality => mixed(0.30, 0.30, 0.35, 0.05, 0.0),
            Kind::RiverLevel => mixed(0.20, 0.0, 0.0, 0.0, 0.80),
            Kind::StreetFlood => mixed(0.30, 0.60, 0.10, 0.0, 0.0),
            Kind::WaterQuality => mixed(0.10, 0.0, 0.30, 0.0, 0.60),
            Kind::Traffic => mixed(0.05, 0.20, 0.0, 0.75, 0.0),
            Kind::Noise => mixed(0.10, 0.50, 0.10, 0.30, 0.0),
            Kind::Weather => mixed(1.0, 0.0, 0.0, 0.0, 0.0),
            Kind::Streetlight => mixed(0.05, 0.45, 0.0, 0.50, 0.0),
            Kind::Parking => mixed(0.10, 0.70, 0.20, 0.0, 0.0),
            Kind::Camera => mixed(0.10, 0.35, 0.15, 0.40, 0.0),
            Kind::Reports => mixed(1.0, 0.0, 0.0, 0.0, 0.0),
        }
    }

    /// Vietnamese and English labels of one thing.
    fn label(self) -> (&'static str, &'static str) {
        match self {
            Kind::AirQuality => ("Trạm quan trắc không khí", "Air quality station"),
            Kind::RiverLevel => ("Trạm đo mực nước", "Water level gauge"),
            Kind::StreetFlood => ("Cảm biến ngập", "Street flood sensor"),
            Kind::WaterQuality => ("Trạm quan trắc nước", "Water quality station"),
            Kind::Traffic => ("Điểm đếm xe", "Traffic counter"),
            Kind::Noise => ("Cảm biến tiếng ồn", "Noise sensor"),
            Kind::Weather => ("Trạm khí tượng", "Weather station"),
            Kind::Streetlight => ("Đèn chiếu sáng", "Streetlight"),
            Kind::Parking => ("Bãi đỗ xe", "Car park"),
            Kind::Camera => ("Camera", "Camera"),
            Kind::Reports => ("Phản ánh hiện trường", "Citizen reports"),
        }
    }

    /// Vietnamese and English names of the feed.
    fn network(self) -> (&'static str, &'static str) {
        match self {
            Kind::AirQuality => ("Mạng quan trắc không khí", "Air quality network"),
            Kind::RiverLevel => ("Mạng trạm đo mực nước", "Water level gauges"),
            Kind::StreetFlood => ("Mạng cảm biến ngập đô thị", "Urban flood sensors"),
            Kind::WaterQuality => ("Mạng quan trắc chất lượng nước", "Water quality network"),
            Kind::Traffic => ("Mạng đếm lưu lượng giao thông", "Traffic counters"),
            Kind::Noise => ("Mạng đo tiếng ồn", "Noise sensors"),
            Kind::Weather => ("Mạng trạm khí tượng tự động", "Automatic weather stations"),
            Kind::Streetlight => ("Hệ thống chiếu sáng công cộng", "Public lighting"),
            Kind::Parking => ("Hệ thống bãi đỗ xe thông minh", "Smart parking"),
            Kind::Camera => ("Hệ thống camera giám sát", "Surveillance cameras"),
            Kind::Reports => (
                "Cổng tiếp nhận phản ánh hiện trường",
                "Citizen report portal",
            ),
        }
    }

    /// How often the feed must deliver, seconds.
    fn expected_interval_secs(self) -> u64 {
        match self {
            Kind::Camera => 900,
            _ => 300,
        }
    }

    /// The attributes entities of this kind declare.
    pub fn attrs(self) -> &'static [AttrDef] {
        const AIR: &[AttrDef] = &[
            num(Attr::Pm25, "pm25", Some("µg/m3"), true),
            num(Attr::Aqi, "aqi", None, true),
            num(Attr::Pm10, "pm10", Some("µg/m3"), false),
            num(Attr::No2, "no2", Some("µg/m3"), false),
            num(Attr::O3, "o3", Some("µg/m3"), false),
        ];
        const RIVER: &[AttrDef] = &[num(Attr::WaterLevel, "waterLevel", Some("m"), true)];
        const FLOOD: &[AttrDef] = &[
            num(Attr::CurrentLevel, "currentLevel", Some("m"), true),
            text(Attr::FloodStatus, "floodLevelStatus", false),
        ];
        const WATER_QUALITY: &[AttrDef] = &[
            num(Attr::Turbidity, "turbidity", Some("NTU"), true),
            num(Attr::Ph, "pH", None, false),
            num(Attr::O2, "O2", Some("mg/L"), false),
            num(Attr::WaterTemperature, "temperature", Some("°C"), false),
            num(Attr::Conductivity, "conductivity", Some("µS/cm"), false),
        ];
        const TRAFFIC: &[AttrDef] = &[
            num(Attr::Intensity, "intensity", Some("veh/min"), true),
            num(Attr::Speed, "averageVehicleSpeed", Some("km/h"), true),
            num(Attr::Occupancy, "occupancy", None, false),
        ];
        const NOISE: &[AttrDef] = &[
            num(Attr::LAeq, "LAeq", Some("dB(A)"), true),
            num(Attr::LAmax, "LAmax", Some("dB(A)"), false),
        ];
        const WEATHER: &[AttrDef] = &[
            num(Attr::Temperature, "temperature", Some("°C"), true),
            num(Attr::Precipitation, "precipitation", Some("mm/h"), true),
            num(Attr::Humidity, "relativeHumidity", Some("%"), false),
            num(Attr::WindSpeed, "windSpeed", Some("m/s"), false),
        ];
        const LIGHT: &[AttrDef] = &[
            num(Attr::Illuminance, "illuminanceLevel", None, true),
            text(Attr::PowerState, "powerState", false),
        ];
        const PARKING: &[AttrDef] = &[
            num(Attr::AvailableSpots, "availableSpotNumber", None, true),
            num(Attr::ParkingOccupancy, "occupancy", None, false),
        ];
        const CAMERA: &[AttrDef] = &[text(Attr::CameraStatus, "status", true)];
        const REPORTS: &[AttrDef] = &[num(
            Attr::ReportsLastHour,
            "reportsLastHour",
            Some("1/h"),
            true,
        )];
        match self {
            Kind::AirQuality => AIR,
            Kind::RiverLevel => RIVER,
            Kind::StreetFlood => FLOOD,
            Kind::WaterQuality => WATER_QUALITY,
            Kind::Traffic => TRAFFIC,
            Kind::Noise => NOISE,
            Kind::Weather => WEATHER,
            Kind::Streetlight => LIGHT,
            Kind::Parking => PARKING,
            Kind::Camera => CAMERA,
            Kind::Reports => REPORTS,
        }
    }

    /// Whether the thing reports every minute (cameras report their status
    /// less often).
    pub fn every_minute(self) -> bool {
        self != Kind::Camera
    }
}

/// Where a thing was put, which shapes its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Spot {
    /// Anywhere in the district.
    Uniform,
    /// Near a town centre (index into [`CENTRES`]).
    Centre(usize),
    /// Near an industrial park (index into [`PARKS`]).
    Park(usize),
    /// Along a road (index into [`ROADS`], km from its southern end).
    Road(usize, f64),
    /// Along a river (index into [`RIVERS`], km from its southern end).
    River(usize, f64),
}

/// What the value functions need to know about one entity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    /// Kind of thing.
    pub kind: Kind,
    /// District index.
    pub district: usize,
    /// Index of its source in `DemoData::sources`.
    pub source: usize,
    /// Location (lon, lat).
    pub pos: (f64, f64),
    /// Where it was put.
    pub spot: Spot,
    /// Seed of its own noise.
    pub seed: u64,
    /// Kind-specific level: PM2.5 base, gauge datum, turbidity, road
    /// capacity, noise base, parking spaces, reports per hour.
    pub base: f64,
    /// Kind-specific second parameter: free-flow speed, tidal amplitude,
    /// lamp switching offset, car park profile (0 town, 1 industrial).
    pub extra: f64,
    /// Tidal phase lag, radians (river gauges).
    pub lag: f64,
}

/// The things of the demo, aligned with `DemoData::entities`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Things {
    /// One model per entity, in the same order.
    pub models: Vec<Model>,
    /// Indices of the sources that report every minute (the ones a "feed
    /// going silent" event may silence).
    pub silencable: Vec<usize>,
}

/// Entities, their models and their sources.
pub(crate) struct Placed {
    pub entities: Vec<Entity>,
    pub things: Things,
    pub sources: Vec<DemoSource>,
}

/// How many things of each sensor kind make up `sensors`.
fn counts(sensors: usize) -> Vec<(Kind, usize)> {
    let mut out: Vec<(Kind, usize)> = Kind::SENSORS
        .iter()
        .map(|k| (*k, (k.share() * sensors as f64).round() as usize))
        .collect();
    let total: usize = out.iter().map(|(_, n)| n).sum();
    // Give the rounding difference to the largest kind, so the total is exact.
    if let Some(big) = out.iter_mut().max_by_key(|(_, n)| *n) {
        big.1 = (big.1 + sensors).saturating_sub(total);
    }
    out
}

/// A sampled location before it is checked against the districts.
fn sample_spot(
    kind: Kind,
    geo: &Geography,
    rng: &mut ChaCha8Rng,
    i_uniform: &mut usize,
) -> Option<(f64, f64, Spot, usize)> {
    let m = kind.placement();
    let cats = [m.uniform, m.centres, m.parks, m.roads, m.rivers];
    let total: f64 = cats.iter().sum();
    let mut x = rng.random::<f64>() * total;
    let mut cat = 0;
    for (i, w) in cats.iter().enumerate() {
        if x < *w {
            cat = i;
            break;
        }
        x -= w;
    }
    let uniform = |rng: &mut ChaCha8Rng, i: &mut usize| {
        let d = *i % DISTRICTS.len();
        *i += 1;
        geo.random_in(d, rng)
            .map(|(lon, lat)| (lon, lat, Spot::Uniform, d))
    };
    if cat == 0 {
        return uniform(rng, i_uniform);
    }
    for _ in 0..30 {
        let (lon, lat, spot) = match cat {
            1 => {
                let (i, p) = pick_place(CENTRES, rng);
                let (lon, lat) = near(p, rng);
                (lon, lat, Spot::Centre(i))
            }
            2 => {
                let (i, p) = pick_place(PARKS, rng);
                let (lon, lat) = near(p, rng);
                (lon, lat, Spot::Park(i))
            }
            3 => {
                let (i, l) = pick_line(ROADS, rng);
                let (lon, lat, at) = along(l, 0.05, rng)?;
                (lon, lat, Spot::Road(i, at))
            }
            _ => {
                let (i, l) = pick_line(RIVERS, rng);
                let (lon, lat, at) = along(l, 0.1, rng)?;
                (lon, lat, Spot::River(i, at))
            }
        };
        let (lon, lat) = (geography::round6(lon), geography::round6(lat));
        if let Some(d) = geo.district_at(lon, lat) {
            return Some((lon, lat, spot, d));
        }
    }
    uniform(rng, i_uniform)
}

fn pick_place<'a>(places: &'a [Place], rng: &mut ChaCha8Rng) -> (usize, &'a Place) {
    let total: f64 = places.iter().map(|p| p.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for (i, p) in places.iter().enumerate() {
        if x < p.weight {
            return (i, p);
        }
        x -= p.weight;
    }
    (0, &places[0])
}

fn pick_line<'a>(lines: &'a [Line], rng: &mut ChaCha8Rng) -> (usize, &'a Line) {
    let total: f64 = lines.iter().map(|p| p.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for (i, l) in lines.iter().enumerate() {
        if x < l.weight {
            return (i, l);
        }
        x -= l.weight;
    }
    (0, &lines[0])
}

/// A standard normal number (Box–Muller).
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-12);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A point scattered around a place.
fn near(p: &Place, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let dx = gauss(rng) * p.spread_km / geography::KM_PER_DEG_LON;
    let dy = gauss(rng) * p.spread_km / geography::KM_PER_DEG_LAT;
    (p.lon + dx, p.lat + dy)
}

/// A point along a line, up to `side_km` to either side.
fn along(l: &Line, side_km: f64, rng: &mut ChaCha8Rng) -> Option<(f64, f64, f64)> {
    let at = rng.random::<f64>() * l.length_km();
    let ((lon, lat), (nx, ny)) = l.point_at(at)?;
    let s = rng.random_range(-side_km..=side_km);
    Some((
        lon + nx * s / geography::KM_PER_DEG_LON,
        lat + ny * s / geography::KM_PER_DEG_LAT,
        at,
    ))
}

/// The bearer token of a source: derived from the seed, so a rebuilt demo
/// (same seed) keeps working with the tokens stored in its data dir.
pub(crate) fn token_for(seed: u64, source_id: &str) -> String {
    let digest = Sha256::digest(format!("panorama-demo|{seed}|{source_id}").as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("pns_{hex}")
}

fn source_id(kind: Kind, district: Option<usize>) -> String {
    match district.and_then(|d| DISTRICTS.get(d)) {
        Some(d) => format!("demo-{}-{}", kind.code(), d.code),
        None => format!("demo-{}", kind.code()),
    }
}

/// Places every thing, builds its entity and model, and the sources.
pub(crate) fn place_things(
    geo: &Geography,
    seed: u64,
    sensors: usize,
    cameras: usize,
    now: Timestamp,
) -> Placed {
    // Placement depends only on the seed and the counts, never on `now`,
    // so a rebuilt demo has the same things as the stored one.
    let mut rng = ChaCha8Rng::seed_from_u64(hash2(seed, str_hash("placement")));
    let mut plan: Vec<(Kind, f64, f64, Spot, usize)> = Vec::new();
    let mut kinds = counts(sensors);
    kinds.push((Kind::Camera, cameras));
    for (kind, n) in kinds {
        // The first things of each kind go round the districts, so every
        // district has some of every kind.
        let mut i_uniform = 0usize;
        for i in 0..n {
            let s = if i < DISTRICTS.len().min(n) {
                let d = i % DISTRICTS.len();
                i_uniform = i_uniform.max(i + 1);
                geo.random_in(d, &mut rng)
                    .map(|(lon, lat)| (lon, lat, Spot::Uniform, d))
            } else {
                sample_spot(kind, geo, &mut rng, &mut i_uniform)
            };
            if let Some((lon, lat, spot, d)) = s {
                plan.push((kind, lon, lat, spot, d));
            }
        }
    }
    for (d, def) in DISTRICTS.iter().enumerate() {
        let centre = CENTRES
            .iter()
            .map(|c| (c.lon, c.lat))
            .find(|(lon, lat)| geo.district_at(*lon, *lat) == Some(d))
            .unwrap_or(def.site);
        plan.push((Kind::Reports, centre.0, centre.1, Spot::Uniform, d));
    }

    // Sources: one per kind and district (one for the citizen reports).
    let mut sources: Vec<DemoSource> = Vec::new();
    let mut source_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut silencable = Vec::new();
    let created_at = now;
    for (kind, _, _, _, d) in &plan {
        let district = if *kind == Kind::Reports {
            None
        } else {
            Some(*d)
        };
        let id = source_id(*kind, district);
        if source_index.contains_key(&id) {
            continue;
        }
        let (net_vi, _) = kind.network();
        let name = match district.and_then(|d| DISTRICTS.get(d)) {
            Some(def) => format!("{net_vi} – {}", def.short),
            None => format!("{net_vi} – tỉnh Bình Dương"),
        };
        source_index.insert(id.clone(), sources.len());
        if kind.every_minute() && *kind != Kind::Reports {
            silencable.push(sources.len());
        }
        sources.push(DemoSource {
            token: token_for(seed, &id),
            source: Source {
                id,
                name,
                kind: SourceKind::HttpPush,
                owner_agency: Some(kind.owner().into()),
                domain: Some(kind.domain().into()),
                expected_interval_secs: kind.expected_interval_secs(),
                created_at,
                last_seen_at: None,
                accepted: 0,
                rejected: 0,
                last_error: None,
                connector: None,
            },
            entity_type: Some(kind.entity_type().into()),
        });
    }

    let mut numbers: BTreeMap<(Kind, usize), usize> = BTreeMap::new();
    let mut entities = Vec::with_capacity(plan.len());
    let mut models = Vec::with_capacity(plan.len());
    for (kind, lon, lat, spot, d) in plan {
        let n = numbers.entry((kind, d)).or_insert(0);
        *n += 1;
        let def = &DISTRICTS[d % DISTRICTS.len()];
        let id = format!(
            "urn:ngsi-ld:{}:bd-{}-{:04}",
            kind.entity_type(),
            def.code,
            n
        );
        let district = if kind == Kind::Reports { None } else { Some(d) };
        let source = source_index
            .get(&source_id(kind, district))
            .copied()
            .unwrap_or(0);
        let eseed = hash2(seed, str_hash(&id));
        let model = model_for(kind, d, source, (lon, lat), spot, eseed);
        entities.push(entity_for(
            &id,
            &model,
            *n,
            sources.get(source).map(|s| s.source.id.clone()),
        ));
        models.push(model);
    }
    Placed {
        entities,
        things: Things { models, silencable },
        sources,
    }
}

/// The parameters that shape a thing's values.
fn model_for(
    kind: Kind,
    district: usize,
    source: usize,
    pos: (f64, f64),
    spot: Spot,
    seed: u64,
) -> Model {
    let u = |k: u64| crate::noise::unit(hash2(seed, k));
    let between = |k: u64, lo: f64, hi: f64| lo + (hi - lo) * u(k);
    let (base, extra, lag) = match kind {
        Kind::AirQuality => (
            match spot {
                Spot::Park(_) => between(1, 30.0, 40.0),
                Spot::Centre(_) | Spot::Road(..) => between(1, 24.0, 32.0),
                _ => between(1, 15.0, 22.0),
            },
            0.0,
            0.0,
        ),
        Kind::RiverLevel => {
            let (amp, lag) = match spot {
                Spot::River(r, _) => {
                    let scale = RIVERS.get(r).map_or(0.2, |l| l.scale);
                    // The tide fades and comes later upstream (north).
                    let f = ((11.25 - pos.1) / 0.35).clamp(0.15, 1.0);
                    (scale * f, (pos.1 - 10.85).max(0.0) * 4.0)
                }
                _ => (0.05, 0.0),
            };
            (between(1, 0.8, 2.0), amp, lag)
        }
        Kind::StreetFlood => (between(1, 0.8, 1.2), 0.0, 0.0),
        Kind::WaterQuality => (
            match spot {
                Spot::Park(_) => between(1, 25.0, 45.0),
                _ => between(1, 12.0, 30.0),
            },
            0.0,
            0.0,
        ),
        Kind::Traffic => match spot {
            Spot::Road(r, _) => {
                let road = ROADS.get(r);
                (
                    road.map_or(30.0, |l| l.scale) * between(1, 0.7, 1.1),
                    road.map_or(50.0, |l| l.speed),
                    0.0,
                )
            }
            Spot::Centre(_) => (between(1, 18.0, 35.0), 35.0, 0.0),
            _ => (between(1, 5.0, 12.0), 45.0, 0.0),
        },
        Kind::Noise => (
            match spot {
                Spot::Park(_) => 60.0,
                Spot::Road(..) => 62.0,
                Spot::Centre(_) => 57.0,
                _ => 48.0,
            } + between(1, -2.0, 2.0),
            0.0,
            0.0,
        ),
        Kind::Weather => (0.0, 0.0, 0.0),
        Kind::Streetlight => (0.0, between(2, -8.0, 8.0), 0.0),
        Kind::Parking => match spot {
            Spot::Park(_) => (between(1, 100.0, 600.0).round(), 1.0, 0.0),
            Spot::Centre(_) => (between(1, 60.0, 400.0).round(), 0.0, 0.0),
            _ => (between(1, 30.0, 120.0).round(), 0.0, 0.0),
        },
        Kind::Camera => (0.0, 0.0, 0.0),
        Kind::Reports => (
            DISTRICTS.get(district).map_or(100_000.0, |d| d.population) / 100_000.0,
            0.0,
            0.0,
        ),
    };
    Model {
        kind,
        district,
        source,
        pos,
        spot,
        seed: mix(seed),
        base,
        extra,
        lag,
    }
}

/// Vietnamese decimal comma.
fn vn_decimal(v: f64) -> String {
    format!("{v:.1}").replace('.', ",")
}

fn entity_for(id: &str, m: &Model, n: usize, source: Option<String>) -> Entity {
    let def = &DISTRICTS[m.district % DISTRICTS.len()];
    let (label_vi, label_en) = m.kind.label();
    let (where_vi, where_en, area) = match m.spot {
        Spot::Uniform => (
            def.short.to_string(),
            def.name_en.to_string(),
            def.short.to_string(),
        ),
        Spot::Centre(i) => {
            let p = &CENTRES[i % CENTRES.len()];
            (
                p.name.to_string(),
                p.name_en.to_string(),
                p.name.to_string(),
            )
        }
        Spot::Park(i) => {
            let p = &PARKS[i % PARKS.len()];
            (
                p.name.to_string(),
                p.name_en.to_string(),
                p.name.to_string(),
            )
        }
        Spot::Road(i, at) | Spot::River(i, at) => {
            let l = if matches!(m.spot, Spot::Road(..)) {
                &ROADS[i % ROADS.len()]
            } else {
                &RIVERS[i % RIVERS.len()]
            };
            (
                format!("{} km {}", l.name, vn_decimal(at)),
                format!("{} km {at:.1}", l.name_en),
                l.name.to_string(),
            )
        }
    };
    let name = if m.kind == Kind::Reports {
        format!("{label_vi} – {}", def.name)
    } else {
        format!("{label_vi} {where_vi} – {n:03}")
    };
    let name_en = if m.kind == Kind::Reports {
        format!("{label_en} – {}", def.name_en)
    } else {
        format!("{label_en} {where_en} – {n:03}")
    };
    let mut properties = Map::new();
    properties.insert("name_en".into(), Json::String(name_en));
    properties.insert(
        "address".into(),
        json!({"addressLocality": def.short, "addressRegion": "Bình Dương", "addressCountry": "VN"}),
    );
    properties.insert("areaServed".into(), Json::String(area));
    let mut domain = m.kind.domain();
    match m.kind {
        Kind::AirQuality => {
            properties.insert("typeOfLocation".into(), json!("outdoor"));
        }
        Kind::RiverLevel => {
            properties.insert("referenceLevel".into(), json!(round2(m.base)));
            properties.insert("alertLevel".into(), json!(round2(m.base + m.extra + 0.6)));
            properties.insert("dangerLevel".into(), json!(round2(m.base + m.extra + 1.0)));
        }
        Kind::StreetFlood => {
            properties.insert("alertLevel".into(), json!(0.15));
            properties.insert("dangerLevel".into(), json!(0.3));
        }
        Kind::Traffic => {
            if let Spot::Road(i, at) = m.spot {
                properties.insert(
                    "refRoadSegment".into(),
                    json!(format!("{}-km{:.0}", ROADS[i % ROADS.len()].code, at)),
                );
                properties.insert("roadName".into(), json!(ROADS[i % ROADS.len()].name));
            }
            properties.insert("laneDirection".into(), json!("forward"));
        }
        Kind::Parking => {
            properties.insert("totalSpotNumber".into(), json!(m.base));
            properties.insert("category".into(), json!(["public", "feeCharged"]));
        }
        Kind::Streetlight => {
            properties.insert(
                "locationCategory".into(),
                json!(if matches!(m.spot, Spot::Road(..)) {
                    "road"
                } else {
                    "street"
                }),
            );
        }
        Kind::Camera => {
            let on_road = matches!(m.spot, Spot::Road(..));
            if on_road {
                domain = "traffic";
            }
            let tail = id.rsplit(':').next().unwrap_or(id);
            properties.insert(
                "cameraType".into(),
                json!(if n.is_multiple_of(5) { "PTZ" } else { "FIXED" }),
            );
            properties.insert(
                "cameraUsage".into(),
                json!(if on_road { "TRAFFIC" } else { "SURVEILLANCE" }),
            );
            // A local placeholder: the demo ships no video; the server may
            // serve an image at this address.
            properties.insert(
                "streamURL".into(),
                json!(format!("/demo/camera/{tail}.svg")),
            );
        }
        Kind::Reports => {
            properties.insert("population".into(), json!(def.population));
        }
        _ => {}
    }
    let attributes = m
        .kind
        .attrs()
        .iter()
        .map(|a| {
            (
                a.name.to_string(),
                AttributeSpec {
                    value_type: a.ty,
                    unit: a.unit.map(Into::into),
                },
            )
        })
        .collect();
    Entity {
        id: id.to_string(),
        entity_type: m.kind.entity_type().into(),
        name,
        domain: domain.into(),
        admin_unit: Some(def.code.into()),
        location: Some(geojson::Geometry::new_point([m.pos.0, m.pos.1])),
        attributes,
        properties,
        source,
        updated_at: None,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        for n in [0, 1, 10, 100, 2000, 2001, 5000] {
            assert_eq!(counts(n).iter().map(|(_, c)| c).sum::<usize>(), n);
        }
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        assert_eq!(token_for(1, "a"), token_for(1, "a"));
        assert_ne!(token_for(1, "a"), token_for(2, "a"));
        assert_ne!(token_for(1, "a"), token_for(1, "b"));
        assert!(token_for(1, "a").starts_with("pns_"));
    }
}
