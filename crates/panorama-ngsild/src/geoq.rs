//! Geo-queries (`georel`, `geometry`, `coordinates`, `geoproperty`):
//! near (with maxDistance / minDistance in metres), within, contains,
//! intersects, equals, disjoint, overlaps.

use geo::{Contains, Distance, Haversine, Intersects, Relate, Within};

/// The relation asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoRel {
    /// At most this many metres away.
    NearMax(f64),
    /// At least this many metres away.
    NearMin(f64),
    /// Inside the query geometry.
    Within,
    /// Contains the query geometry.
    Contains,
    /// Shares a point with it.
    Intersects,
    /// The same geometry.
    Equals,
    /// Shares no point with it.
    Disjoint,
    /// Overlaps it.
    Overlaps,
}

/// A parsed geo-query.
#[derive(Debug, Clone)]
pub struct GeoQuery {
    /// The relation.
    pub rel: GeoRel,
    /// The query geometry.
    pub geometry: geo::Geometry<f64>,
    /// The GeoProperty tested (as written; `location` by default).
    pub property: String,
}

/// Parses `georel` (`near;maxDistance==2000`, `within`, …).
pub fn parse_georel(s: &str) -> Result<GeoRel, String> {
    let mut parts = s.split(';');
    let head = parts.next().unwrap_or_default();
    let rel = match head {
        "near" => {
            let Some(mod_) = parts.next() else {
                return Err("near needs maxDistance==<metres> or minDistance==<metres>".into());
            };
            let (k, v) = mod_.split_once("==").ok_or_else(|| {
                format!("'{mod_}' must be maxDistance==<metres> or minDistance==<metres>")
            })?;
            let d: f64 = v
                .parse()
                .ok()
                .filter(|d: &f64| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| format!("'{v}' is not a distance in metres"))?;
            match k {
                "maxDistance" => GeoRel::NearMax(d),
                "minDistance" => GeoRel::NearMin(d),
                _ => return Err(format!("'{k}' is not maxDistance or minDistance")),
            }
        }
        "within" => GeoRel::Within,
        "contains" => GeoRel::Contains,
        "intersects" => GeoRel::Intersects,
        "equals" => GeoRel::Equals,
        "disjoint" => GeoRel::Disjoint,
        "overlaps" => GeoRel::Overlaps,
        other => {
            return Err(format!(
                "'{other}' is not near, within, contains, intersects, equals, disjoint or overlaps"
            ));
        }
    };
    if parts.next().is_some() {
        return Err(format!("'{s}' has more parts than a georel takes"));
    }
    Ok(rel)
}

/// Builds the query geometry from `geometry` and `coordinates` (a JSON array).
pub fn parse_geometry(
    kind: &str,
    coordinates: &str,
) -> Result<geo::Geometry<f64>, (String, String)> {
    let coords: serde_json::Value = serde_json::from_str(coordinates).map_err(|e| {
        (
            "coordinates".to_string(),
            format!("must be a JSON array of numbers ({e})"),
        )
    })?;
    let gj = serde_json::json!({"type": kind, "coordinates": coords});
    let g: geojson::Geometry = serde_json::from_value(gj).map_err(|e| {
        if !matches!(
            kind,
            "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon"
        ) {
            (
                "geometry".to_string(),
                format!("'{kind}' is not a GeoJSON geometry type"),
            )
        } else {
            (
                "coordinates".to_string(),
                format!("do not fit a {kind} ({e})"),
            )
        }
    })?;
    panorama_core::geo::check_geometry(&g).map_err(|e| ("coordinates".to_string(), e))?;
    g.try_into()
        .map_err(|e: geojson::Error| ("coordinates".to_string(), e.to_string()))
}

fn min_distance(a: &geo::Geometry<f64>, b: &geo::Geometry<f64>) -> f64 {
    use geo::CoordsIter;
    // Exact for points; for lines and areas the nearest vertices, or 0 when they meet.
    if a.intersects(b) {
        return 0.0;
    }
    let mut best = f64::INFINITY;
    for p in a.coords_iter() {
        for q in b.coords_iter() {
            let d = Haversine.distance(geo::Point::from(p), geo::Point::from(q));
            if d < best {
                best = d;
            }
        }
    }
    best
}

/// Whether an entity's geometry `g` stands in the asked relation.
pub fn holds(q: &GeoQuery, g: &geo::Geometry<f64>) -> bool {
    match q.rel {
        GeoRel::NearMax(d) => min_distance(g, &q.geometry) <= d,
        GeoRel::NearMin(d) => min_distance(g, &q.geometry) >= d,
        GeoRel::Within => g.is_within(&q.geometry),
        GeoRel::Contains => g.contains(&q.geometry),
        GeoRel::Intersects => g.intersects(&q.geometry),
        GeoRel::Equals => g.relate(&q.geometry).is_equal_topo(),
        GeoRel::Disjoint => !g.intersects(&q.geometry),
        GeoRel::Overlaps => g.relate(&q.geometry).is_overlaps(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(rel: &str, kind: &str, coords: &str) -> GeoQuery {
        GeoQuery {
            rel: parse_georel(rel).unwrap(),
            geometry: parse_geometry(kind, coords).unwrap(),
            property: "location".into(),
        }
    }

    fn pt(x: f64, y: f64) -> geo::Geometry<f64> {
        geo::Geometry::Point(geo::Point::new(x, y))
    }

    #[test]
    fn relations() {
        let near = q("near;maxDistance==2000", "Point", "[106.65, 10.98]");
        assert!(holds(&near, &pt(106.66, 10.98)));
        assert!(!holds(&near, &pt(106.75, 10.98)));
        let far = q("near;minDistance==2000", "Point", "[106.65, 10.98]");
        assert!(holds(&far, &pt(106.75, 10.98)));
        let area = "[[[106,10],[107,10],[107,11],[106,11],[106,10]]]";
        assert!(holds(&q("within", "Polygon", area), &pt(106.5, 10.5)));
        assert!(!holds(&q("within", "Polygon", area), &pt(108.0, 10.5)));
        assert!(holds(&q("intersects", "Polygon", area), &pt(106.5, 10.5)));
        assert!(holds(&q("disjoint", "Polygon", area), &pt(108.0, 10.5)));
        assert!(holds(&q("equals", "Point", "[1,2]"), &pt(1.0, 2.0)));
    }

    #[test]
    fn bad_geo_queries_name_the_parameter() {
        assert!(parse_georel("near").is_err());
        assert!(parse_georel("near;maxDistance==-1").is_err());
        assert!(parse_georel("near;radius==5").is_err());
        assert!(parse_georel("inside").is_err());
        assert_eq!(parse_geometry("Circle", "[1,2]").unwrap_err().0, "geometry");
        assert_eq!(parse_geometry("Point", "[1,").unwrap_err().0, "coordinates");
        assert_eq!(
            parse_geometry("Point", "[[1,2]]").unwrap_err().0,
            "coordinates"
        );
        assert_eq!(
            parse_geometry("Point", "[500,2]").unwrap_err().0,
            "coordinates"
        );
    }

    proptest! {
        #[test]
        fn georel_parsing_never_panics(s in "\\PC{0,30}") {
            let _ = parse_georel(&s);
        }

        #[test]
        fn max_distances_parse(d in 0.0f64..1.0e7) {
            prop_assert_eq!(parse_georel(&format!("near;maxDistance=={d}")).unwrap(), GeoRel::NearMax(d));
        }

        #[test]
        fn a_point_is_within_any_box_around_it(x in -170.0f64..170.0, y in -80.0f64..80.0, w in 0.01f64..5.0) {
            let coords = format!("[[[{},{}],[{},{}],[{},{}],[{},{}],[{},{}]]]",
                x - w, y - w, x + w, y - w, x + w, y + w, x - w, y + w, x - w, y - w);
            prop_assert!(holds(&q("within", "Polygon", &coords), &pt(x, y)));
            prop_assert!(!holds(&q("disjoint", "Polygon", &coords), &pt(x, y)));
        }
    }
}
