//! Binh Duong's geography: the province outline (Natural Earth admin-1,
//! public domain), nine district cells that tile it, and the places sensors
//! cluster around (town centres, industrial parks, main roads, rivers).
//!
//! The district shapes are not the legal boundaries (those are not public
//! domain): each is the Voronoi cell of a site inside the real district,
//! clipped to the outline. The sites were placed so that each cell overlaps
//! its real district as much as a Voronoi cell can (checked by a test
//! against reference boundaries).

use crate::DemoError;
use geo::{
    BooleanOps, BoundingRect, Contains, Coord, LineString, MapCoords, MultiPolygon, Point, Polygon,
    Rect,
};
use rand::Rng;

const OUTLINE_GEOJSON: &str = include_str!("../data/binh_duong_outline.geojson");

/// Kilometres per degree of longitude and latitude around 11° N.
pub(crate) const KM_PER_DEG_LON: f64 = 109.3;
pub(crate) const KM_PER_DEG_LAT: f64 = 110.6;

/// Distance in km between two (lon, lat) points (equirectangular; exact
/// enough across one province).
pub(crate) fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    km2(a, b).sqrt()
}

/// The square of [`km`]: cheaper, for the hot paths that only need it.
#[inline]
pub(crate) fn km2(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = ((a.0 - b.0) * KM_PER_DEG_LON, (a.1 - b.1) * KM_PER_DEG_LAT);
    dx * dx + dy * dy
}

/// One of the nine districts of Binh Duong before 2025.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DistrictDef {
    /// GSO code.
    pub code: &'static str,
    /// Full Vietnamese name with its type.
    pub name: &'static str,
    /// Short name without the type.
    pub short: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Voronoi site (lon, lat).
    pub site: (f64, f64),
    /// Approximate population, for weighting counts and report rates.
    pub population: f64,
}

/// The districts, in code order. Index into this array = district index.
pub(crate) const DISTRICTS: [DistrictDef; 9] = [
    DistrictDef {
        code: "718",
        name: "Thành phố Thủ Dầu Một",
        short: "Thủ Dầu Một",
        name_en: "Thu Dau Mot City",
        site: (106.654, 11.016),
        population: 380_000.0,
    },
    DistrictDef {
        code: "719",
        name: "Huyện Bàu Bàng",
        short: "Bàu Bàng",
        name_en: "Bau Bang District",
        site: (106.599, 11.238),
        population: 110_000.0,
    },
    DistrictDef {
        code: "720",
        name: "Huyện Dầu Tiếng",
        short: "Dầu Tiếng",
        name_en: "Dau Tieng District",
        site: (106.468, 11.259),
        population: 120_000.0,
    },
    DistrictDef {
        code: "721",
        name: "Thành phố Bến Cát",
        short: "Bến Cát",
        name_en: "Ben Cat City",
        site: (106.597, 11.093),
        population: 330_000.0,
    },
    DistrictDef {
        code: "722",
        name: "Huyện Phú Giáo",
        short: "Phú Giáo",
        name_en: "Phu Giao District",
        site: (106.778, 11.296),
        population: 95_000.0,
    },
    DistrictDef {
        code: "723",
        name: "Thành phố Tân Uyên",
        short: "Tân Uyên",
        name_en: "Tan Uyen City",
        site: (106.762, 11.044),
        population: 400_000.0,
    },
    DistrictDef {
        code: "724",
        name: "Thành phố Dĩ An",
        short: "Dĩ An",
        name_en: "Di An City",
        site: (106.770, 10.909),
        population: 480_000.0,
    },
    DistrictDef {
        code: "725",
        name: "Thành phố Thuận An",
        short: "Thuận An",
        name_en: "Thuan An City",
        site: (106.712, 10.919),
        population: 620_000.0,
    },
    DistrictDef {
        code: "726",
        name: "Huyện Bắc Tân Uyên",
        short: "Bắc Tân Uyên",
        name_en: "Bac Tan Uyen District",
        site: (106.825, 11.133),
        population: 80_000.0,
    },
];

/// A place things cluster around.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    /// Vietnamese name.
    pub name: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    /// Standard deviation of the cluster, km.
    pub spread_km: f64,
    /// Relative share of the cluster's things.
    pub weight: f64,
}

const fn place(
    name: &'static str,
    name_en: &'static str,
    lon: f64,
    lat: f64,
    spread_km: f64,
    weight: f64,
) -> Place {
    Place {
        name,
        name_en,
        lon,
        lat,
        spread_km,
        weight,
    }
}

/// Town and city centres.
pub(crate) const CENTRES: &[Place] = &[
    place(
        "trung tâm Thủ Dầu Một",
        "Thu Dau Mot centre",
        106.652,
        10.980,
        1.6,
        3.0,
    ),
    place(
        "Thành phố mới Bình Dương",
        "Binh Duong New City",
        106.675,
        11.055,
        1.4,
        1.5,
    ),
    place(
        "trung tâm Thuận An (Lái Thiêu)",
        "Thuan An centre (Lai Thieu)",
        106.700,
        10.905,
        1.5,
        3.0,
    ),
    place("trung tâm Dĩ An", "Di An centre", 106.768, 10.905, 1.4, 3.0),
    place(
        "trung tâm Bến Cát (Mỹ Phước)",
        "Ben Cat centre (My Phuoc)",
        106.593,
        11.155,
        1.3,
        1.5,
    ),
    place(
        "trung tâm Tân Uyên (Uyên Hưng)",
        "Tan Uyen centre (Uyen Hung)",
        106.795,
        11.065,
        1.3,
        1.5,
    ),
    place(
        "thị trấn Tân Thành",
        "Tan Thanh town",
        106.845,
        11.165,
        1.0,
        0.6,
    ),
    place(
        "thị trấn Phước Vĩnh",
        "Phuoc Vinh town",
        106.795,
        11.295,
        1.0,
        0.6,
    ),
    place(
        "thị trấn Dầu Tiếng",
        "Dau Tieng town",
        106.375,
        11.280,
        1.0,
        0.6,
    ),
    place(
        "thị trấn Lai Uyên",
        "Lai Uyen town",
        106.630,
        11.265,
        1.0,
        0.6,
    ),
];

/// Industrial parks.
pub(crate) const PARKS: &[Place] = &[
    place(
        "KCN VSIP I",
        "VSIP I industrial park",
        106.712,
        10.928,
        0.9,
        1.5,
    ),
    place(
        "KCN VSIP II",
        "VSIP II industrial park",
        106.683,
        11.075,
        1.0,
        1.5,
    ),
    place(
        "KCN VSIP II-A",
        "VSIP II-A industrial park",
        106.735,
        11.115,
        1.1,
        1.2,
    ),
    place(
        "KCN Mỹ Phước",
        "My Phuoc industrial park",
        106.600,
        11.130,
        1.2,
        1.5,
    ),
    place(
        "KCN Bàu Bàng",
        "Bau Bang industrial park",
        106.640,
        11.255,
        1.2,
        1.2,
    ),
    place(
        "KCN Sóng Thần",
        "Song Than industrial park",
        106.757,
        10.893,
        0.8,
        1.2,
    ),
    place(
        "KCN Nam Tân Uyên",
        "Nam Tan Uyen industrial park",
        106.772,
        11.032,
        0.9,
        0.8,
    ),
    place(
        "KCN Đồng An",
        "Dong An industrial park",
        106.726,
        10.951,
        0.7,
        0.7,
    ),
    place(
        "KCN Tân Đông Hiệp",
        "Tan Dong Hiep industrial park",
        106.785,
        10.925,
        0.7,
        0.7,
    ),
    place(
        "KCN Đất Cuốc",
        "Dat Cuoc industrial park",
        106.850,
        11.170,
        0.9,
        0.6,
    ),
];

/// A road or river as a polyline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    /// Short code, e.g. `QL13`.
    pub code: &'static str,
    /// Vietnamese name.
    pub name: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Relative share of the things placed along lines.
    pub weight: f64,
    /// For roads: vehicles per minute at the busiest hour; for rivers: tidal
    /// amplitude (m) at the southern end.
    pub scale: f64,
    /// For roads: free-flow speed, km/h; for rivers: unused.
    pub speed: f64,
    /// Vertices (lon, lat), from south to north.
    pub points: &'static [(f64, f64)],
}

/// Index of National Road 13 in [`ROADS`].
pub(crate) const QL13: usize = 0;

/// Main roads.
pub(crate) const ROADS: &[Line] = &[
    Line {
        code: "QL13",
        name: "Quốc lộ 13",
        name_en: "National Road 13",
        weight: 0.40,
        scale: 80.0,
        speed: 60.0,
        points: &[
            (106.708, 10.862),
            (106.700, 10.900),
            (106.690, 10.935),
            (106.668, 10.975),
            (106.655, 11.010),
            (106.640, 11.060),
            (106.620, 11.105),
            (106.603, 11.150),
            (106.607, 11.200),
            (106.625, 11.255),
            (106.640, 11.300),
            (106.655, 11.345),
        ],
    },
    Line {
        code: "DT743",
        name: "Đường tỉnh 743",
        name_en: "Provincial Road 743",
        weight: 0.20,
        scale: 50.0,
        speed: 50.0,
        points: &[
            (106.760, 10.880),
            (106.745, 10.915),
            (106.730, 10.945),
            (106.718, 10.975),
            (106.735, 11.010),
            (106.765, 11.045),
            (106.790, 11.070),
        ],
    },
    Line {
        code: "DT741",
        name: "Đường tỉnh 741",
        name_en: "Provincial Road 741",
        weight: 0.20,
        scale: 40.0,
        speed: 55.0,
        points: &[
            (106.668, 10.990),
            (106.690, 11.040),
            (106.715, 11.090),
            (106.740, 11.150),
            (106.765, 11.220),
            (106.790, 11.290),
            (106.815, 11.360),
        ],
    },
    Line {
        code: "DT744",
        name: "Đường tỉnh 744",
        name_en: "Provincial Road 744",
        weight: 0.12,
        scale: 30.0,
        speed: 55.0,
        points: &[
            (106.662, 10.995),
            (106.620, 11.060),
            (106.565, 11.120),
            (106.500, 11.190),
            (106.440, 11.240),
            (106.375, 11.275),
        ],
    },
    Line {
        code: "MP-TV",
        name: "Đường Mỹ Phước – Tân Vạn",
        name_en: "My Phuoc – Tan Van Road",
        weight: 0.08,
        scale: 60.0,
        speed: 60.0,
        points: &[
            (106.770, 10.890),
            (106.735, 10.960),
            (106.700, 11.030),
            (106.660, 11.100),
            (106.620, 11.160),
        ],
    },
];

/// Rivers (water gauges and water-quality stations sit along them).
pub(crate) const RIVERS: &[Line] = &[
    Line {
        code: "song-sai-gon",
        name: "sông Sài Gòn",
        name_en: "Saigon River",
        weight: 0.45,
        scale: 0.75,
        speed: 0.0,
        points: &[
            (106.690, 10.880),
            (106.670, 10.930),
            (106.640, 10.970),
            (106.620, 11.020),
            (106.570, 11.080),
            (106.520, 11.150),
            (106.460, 11.220),
            (106.400, 11.300),
        ],
    },
    Line {
        code: "song-dong-nai",
        name: "sông Đồng Nai",
        name_en: "Dong Nai River",
        weight: 0.25,
        scale: 0.7,
        speed: 0.0,
        points: &[
            (106.800, 10.910),
            (106.820, 10.960),
            (106.840, 11.010),
            (106.880, 11.060),
            (106.930, 11.120),
        ],
    },
    Line {
        code: "song-be",
        name: "sông Bé",
        name_en: "Be River",
        weight: 0.15,
        scale: 0.25,
        speed: 0.0,
        points: &[
            (106.920, 11.130),
            (106.900, 11.200),
            (106.880, 11.300),
            (106.900, 11.400),
        ],
    },
    Line {
        code: "song-thi-tinh",
        name: "sông Thị Tính",
        name_en: "Thi Tinh River",
        weight: 0.15,
        scale: 0.3,
        speed: 0.0,
        points: &[
            (106.610, 11.040),
            (106.600, 11.120),
            (106.590, 11.200),
            (106.580, 11.300),
        ],
    },
];

impl Line {
    /// Length of each segment, km.
    fn segment_km(&self) -> impl Iterator<Item = f64> + '_ {
        self.points.windows(2).map(|w| match w {
            [a, b] => km(*a, *b),
            _ => 0.0,
        })
    }

    /// Total length, km.
    pub fn length_km(&self) -> f64 {
        self.segment_km().sum()
    }

    /// The point `at_km` along the line, and the unit normal there (in km).
    pub fn point_at(&self, at_km: f64) -> Option<((f64, f64), (f64, f64))> {
        let mut left = at_km.max(0.0);
        let mut last = None;
        for (w, len) in self.points.windows(2).zip(self.segment_km()) {
            let [a, b] = w else { continue };
            let (dx, dy) = ((b.0 - a.0) * KM_PER_DEG_LON, (b.1 - a.1) * KM_PER_DEG_LAT);
            let normal = if len > 0.0 {
                (-dy / len, dx / len)
            } else {
                (0.0, 0.0)
            };
            if left <= len && len > 0.0 {
                let f = left / len;
                return Some(((a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f), normal));
            }
            left -= len;
            last = Some((*b, normal));
        }
        last
    }
}

/// Rounds a coordinate to 6 decimals (about 0.1 m).
pub(crate) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The province outline and the district cells.
#[derive(Debug, Clone)]
pub(crate) struct Geography {
    /// The province outline.
    pub outline: MultiPolygon<f64>,
    /// District cells, in the order of [`DISTRICTS`], rounded to 6 decimals.
    pub cells: Vec<MultiPolygon<f64>>,
    boxes: Vec<Rect<f64>>,
}

impl Geography {
    /// Parses the outline and cuts it into the district cells.
    pub fn new() -> Result<Self, DemoError> {
        let outline = parse_outline(OUTLINE_GEOJSON)?;
        let sites: Vec<Coord<f64>> = DISTRICTS
            .iter()
            .map(|d| Coord {
                x: d.site.0,
                y: d.site.1,
            })
            .collect();
        let cells: Vec<MultiPolygon<f64>> = voronoi_cells(&outline, &sites)
            .into_iter()
            .map(|c| {
                c.map_coords(|p| Coord {
                    x: round6(p.x),
                    y: round6(p.y),
                })
            })
            .collect();
        let mut boxes = Vec::with_capacity(cells.len());
        for (c, d) in cells.iter().zip(DISTRICTS.iter()) {
            let b = c.bounding_rect().ok_or_else(|| {
                DemoError::Data(format!("the cell of district {} is empty", d.code))
            })?;
            boxes.push(b);
        }
        Ok(Self {
            outline,
            cells,
            boxes,
        })
    }

    /// The district whose cell holds the point.
    pub fn district_at(&self, lon: f64, lat: f64) -> Option<usize> {
        let p = Point::new(lon, lat);
        self.cells.iter().zip(&self.boxes).position(|(cell, b)| {
            lon >= b.min().x
                && lon <= b.max().x
                && lat >= b.min().y
                && lat <= b.max().y
                && cell.contains(&p)
        })
    }

    /// A uniformly random point (rounded) inside district `d`'s cell.
    pub fn random_in(&self, d: usize, rng: &mut impl Rng) -> Option<(f64, f64)> {
        let b = self.boxes.get(d)?;
        for _ in 0..10_000 {
            let lon = round6(rng.random_range(b.min().x..=b.max().x));
            let lat = round6(rng.random_range(b.min().y..=b.max().y));
            if self.district_at(lon, lat) == Some(d) {
                return Some((lon, lat));
            }
        }
        None
    }
}

/// Reads the single Polygon of the committed outline file.
fn parse_outline(text: &str) -> Result<MultiPolygon<f64>, DemoError> {
    let gj: geojson::GeoJson = text
        .parse()
        .map_err(|e| DemoError::Data(format!("the province outline is not GeoJSON: {e}")))?;
    let geom: geo::Geometry<f64> = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc
            .features
            .into_iter()
            .next()
            .and_then(|f| f.geometry)
            .ok_or_else(|| DemoError::Data("the province outline has no feature".into()))?
            .try_into()
            .map_err(|e: geojson::Error| DemoError::Data(format!("the province outline: {e}")))?,
        geojson::GeoJson::Feature(f) => f
            .geometry
            .ok_or_else(|| DemoError::Data("the province outline has no geometry".into()))?
            .try_into()
            .map_err(|e: geojson::Error| DemoError::Data(format!("the province outline: {e}")))?,
        geojson::GeoJson::Geometry(g) => g
            .try_into()
            .map_err(|e: geojson::Error| DemoError::Data(format!("the province outline: {e}")))?,
    };
    match geom {
        geo::Geometry::Polygon(p) => Ok(MultiPolygon::new(vec![p])),
        geo::Geometry::MultiPolygon(m) => Ok(m),
        _ => Err(DemoError::Data(
            "the province outline must be a Polygon".into(),
        )),
    }
}

/// Each site's Voronoi cell inside `outline`: the outline clipped by the
/// half-plane of points closer to the site than to each other site. Exact
/// (up to floating point) and simple; nine sites need 72 clips.
pub(crate) fn voronoi_cells(
    outline: &MultiPolygon<f64>,
    sites: &[Coord<f64>],
) -> Vec<MultiPolygon<f64>> {
    sites
        .iter()
        .enumerate()
        .map(|(i, a)| {
            sites.iter().enumerate().filter(|(j, _)| *j != i).fold(
                outline.clone(),
                |cell, (_, b)| match half_plane(*a, *b) {
                    Some(h) => cell.intersection(&h),
                    None => cell,
                },
            )
        })
        .collect()
}

/// A polygon large enough to stand for the half-plane of points closer to
/// `a` than to `b` (the province spans well under a degree).
fn half_plane(a: Coord<f64>, b: Coord<f64>) -> Option<Polygon<f64>> {
    const L: f64 = 10.0;
    let (nx, ny) = (b.x - a.x, b.y - a.y);
    let len = nx.hypot(ny);
    if len <= 0.0 {
        return None;
    }
    let (nx, ny) = (nx / len, ny / len);
    let (dx, dy) = (-ny, nx);
    let (mx, my) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    // A rectangle with one side on the bisector, reaching towards `a`.
    let ring = vec![
        (mx + dx * L, my + dy * L),
        (mx - dx * L, my - dy * L),
        (mx - dx * L - nx * L, my - dy * L - ny * L),
        (mx + dx * L - nx * L, my + dy * L - ny * L),
        (mx + dx * L, my + dy * L),
    ];
    Some(Polygon::new(LineString::from(ring), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Area;

    #[test]
    fn half_plane_keeps_the_nearer_side() {
        let a = Coord { x: 0.0, y: 0.0 };
        let b = Coord { x: 1.0, y: 0.0 };
        let h = half_plane(a, b).unwrap();
        assert!(h.contains(&Point::new(0.2, 0.3)));
        assert!(!h.contains(&Point::new(0.8, 0.3)));
        assert!(h.unsigned_area() > 10.0);
    }

    #[test]
    fn lines_are_walkable() {
        for l in ROADS.iter().chain(RIVERS) {
            let len = l.length_km();
            assert!(len > 5.0, "{} is {len} km", l.code);
            let (p, n) = l.point_at(len / 2.0).unwrap();
            assert!((n.0.hypot(n.1) - 1.0).abs() < 1e-9);
            assert!(p.0 > 106.0 && p.1 > 10.5);
        }
    }

    #[test]
    fn sites_lie_in_their_own_cells() {
        let g = Geography::new().unwrap();
        for (i, d) in DISTRICTS.iter().enumerate() {
            assert_eq!(g.district_at(d.site.0, d.site.1), Some(i), "{}", d.code);
        }
    }
}
