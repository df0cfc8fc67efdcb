//! Geometry helpers over GeoJSON: validity, areas, containment, bounding boxes.

use geo::{BoundingRect, Centroid, Contains, Coord, Intersects, MultiPolygon, Point, Rect};

/// Checks a GeoJSON geometry: valid coordinates in WGS 84 ranges.
pub fn check_geometry(g: &geojson::Geometry) -> Result<(), String> {
    let geom: geo::Geometry<f64> = g
        .clone()
        .try_into()
        .map_err(|e: geojson::Error| format!("is not a valid GeoJSON geometry: {e}"))?;
    let mut bad = None;
    use geo::CoordsIter;
    for c in geom.coords_iter() {
        if !c.x.is_finite()
            || !c.y.is_finite()
            || !(-180.0..=180.0).contains(&c.x)
            || !(-90.0..=90.0).contains(&c.y)
        {
            bad = Some(c);
            break;
        }
    }
    match bad {
        Some(c) => Err(format!(
            "coordinate [{}, {}] is outside longitude -180..180 / latitude -90..90",
            c.x, c.y
        )),
        None => Ok(()),
    }
}

/// Turns a GeoJSON Polygon or MultiPolygon into an area to test containment.
pub fn area_from_geojson(g: &geojson::Geometry) -> Result<MultiPolygon<f64>, String> {
    check_geometry(g)?;
    let geom: geo::Geometry<f64> = g
        .clone()
        .try_into()
        .map_err(|e: geojson::Error| e.to_string())?;
    match geom {
        geo::Geometry::Polygon(p) => Ok(MultiPolygon::new(vec![p])),
        geo::Geometry::MultiPolygon(m) => Ok(m),
        _ => Err("must be a Polygon or MultiPolygon".into()),
    }
}

/// A point standing for a geometry: itself, or its centroid.
pub fn representative_point(g: &geojson::Geometry) -> Option<(f64, f64)> {
    let geom: geo::Geometry<f64> = g.clone().try_into().ok()?;
    let p: Point<f64> = match geom {
        geo::Geometry::Point(p) => p,
        other => other.centroid()?,
    };
    Some((p.x(), p.y()))
}

/// A longitude/latitude box: west, south, east, north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Western longitude.
    pub west: f64,
    /// Southern latitude.
    pub south: f64,
    /// Eastern longitude.
    pub east: f64,
    /// Northern latitude.
    pub north: f64,
}

impl BBox {
    /// Parses `west,south,east,north`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| "must be four numbers: west,south,east,north".to_string())?;
        let [west, south, east, north] = parts[..] else {
            return Err("must be four numbers: west,south,east,north".into());
        };
        let b = Self {
            west,
            south,
            east,
            north,
        };
        if ![west, south, east, north].iter().all(|v| v.is_finite())
            || !(-180.0..=180.0).contains(&west)
            || !(-180.0..=180.0).contains(&east)
            || !(-90.0..=90.0).contains(&south)
            || !(-90.0..=90.0).contains(&north)
        {
            return Err("coordinates are outside longitude -180..180 / latitude -90..90".into());
        }
        if south > north || west > east {
            return Err("south must not exceed north, nor west exceed east".into());
        }
        Ok(b)
    }

    /// Whether the point (lon, lat) lies in the box (edges included).
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        lon >= self.west && lon <= self.east && lat >= self.south && lat <= self.north
    }

    /// The bounding box of an area.
    pub fn of(area: &MultiPolygon<f64>) -> Option<Self> {
        let r: Rect<f64> = area.bounding_rect()?;
        Some(Self {
            west: r.min().x,
            south: r.min().y,
            east: r.max().x,
            north: r.max().y,
        })
    }
}

/// Whether the point (lon, lat) lies inside `area` (boundary included).
pub fn area_contains(area: &MultiPolygon<f64>, lon: f64, lat: f64) -> bool {
    let p = Point::from(Coord { x: lon, y: lat });
    area.contains(&p) || area.intersects(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> geojson::Geometry {
        geojson::Geometry::new_polygon([[
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 1.0],
            [0.0, 0.0],
        ]])
    }

    #[test]
    fn containment_and_boxes() {
        let a = area_from_geojson(&square()).unwrap();
        assert!(area_contains(&a, 0.5, 0.5));
        assert!(area_contains(&a, 1.0, 0.5));
        assert!(!area_contains(&a, 1.5, 0.5));
        let b = BBox::of(&a).unwrap();
        assert_eq!((b.west, b.north), (0.0, 1.0));
        assert!(BBox::parse("1,2,3").is_err());
        assert!(BBox::parse("3,0,1,1").is_err());
        assert!(BBox::parse("0,0,200,1").is_err());
    }

    #[test]
    fn points_are_not_areas() {
        let p = geojson::Geometry::new_point([106.6, 11.0]);
        assert!(area_from_geojson(&p).is_err());
        assert_eq!(representative_point(&p), Some((106.6, 11.0)));
        let bad = geojson::Geometry::new_point([206.6, 11.0]);
        assert!(check_geometry(&bad).is_err());
    }
}
