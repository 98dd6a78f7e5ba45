//! Points on the Earth and the great-circle distance between them.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in kilometres (IUGG), used by [`GeoPoint::distance_km`].
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A latitude/longitude pair in decimal degrees (WGS 84).
///
/// Invariant: `lat` is in `-90..=90` and `lon` in `-180..=180`; [`GeoPoint::new`] and
/// deserialization check it. (The fields are public for reading; a point built by hand
/// with values out of range gives meaningless distances.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGeoPoint")]
pub struct GeoPoint {
    /// Latitude in degrees, north positive.
    pub lat: f64,
    /// Longitude in degrees, east positive.
    pub lon: f64,
}

/// Why a coordinate pair was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoPointError {
    /// Latitude outside -90..=90 or not a number.
    #[error("latitude {0} is outside -90..=90")]
    Latitude(f64),
    /// Longitude outside -180..=180 or not a number.
    #[error("longitude {0} is outside -180..=180")]
    Longitude(f64),
}

/// The serialized form, checked by [`GeoPoint::new`] on the way in.
#[derive(Deserialize)]
struct RawGeoPoint {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawGeoPoint> for GeoPoint {
    type Error = GeoPointError;
    fn try_from(r: RawGeoPoint) -> Result<Self, Self::Error> {
        GeoPoint::new(r.lat, r.lon)
    }
}

impl GeoPoint {
    /// Checks the ranges and builds a point.
    pub fn new(lat: f64, lon: f64) -> Result<Self, GeoPointError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeoPointError::Latitude(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(GeoPointError::Longitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Great-circle distance in kilometres (haversine formula on a sphere of
    /// [`EARTH_RADIUS_KM`]); accurate to about 0.5 %, which is far below the error of
    /// any fibre-path model built on top of it.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (la1, la2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = la2 - la1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

impl std::str::FromStr for GeoPoint {
    type Err = String;

    /// Parses `"lat,lon"` (for example `"-23.43,-46.47"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lat, lon) = s
            .split_once(',')
            .ok_or_else(|| format!("expected \"lat,lon\", got {s:?}"))?;
        let lat: f64 = lat
            .trim()
            .parse()
            .map_err(|_| format!("latitude {lat:?} is not a number"))?;
        let lon: f64 = lon
            .trim()
            .parse()
            .map_err(|_| format!("longitude {lon:?} is not a number"))?;
        GeoPoint::new(lat, lon).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserialization_checks_the_ranges() {
        let ok: GeoPoint = serde_json::from_str(r#"{"lat":50.0,"lon":8.5}"#).unwrap();
        assert_eq!(ok, GeoPoint::new(50.0, 8.5).unwrap());
        for bad in [
            r#"{"lat":1000.0,"lon":0.0}"#,
            r#"{"lat":0.0,"lon":-5000.0}"#,
        ] {
            assert!(serde_json::from_str::<GeoPoint>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn distance_matches_known_pairs() {
        let fra = GeoPoint::new(50.0264, 8.5431).unwrap();
        let gru = GeoPoint::new(-23.4356, -46.4731).unwrap();
        let d = fra.distance_km(&gru);
        // FRA–GRU is about 9,800 km.
        assert!((9700.0..9900.0).contains(&d), "{d}");
        assert_eq!(fra.distance_km(&fra), 0.0);
        assert!((fra.distance_km(&gru) - gru.distance_km(&fra)).abs() < 1e-9);
    }

    #[test]
    fn antipodes_are_half_the_circumference() {
        let a = GeoPoint::new(0.0, 0.0).unwrap();
        let b = GeoPoint::new(0.0, 180.0).unwrap();
        let half = std::f64::consts::PI * EARTH_RADIUS_KM;
        assert!((a.distance_km(&b) - half).abs() < 1e-6);
    }

    #[test]
    fn parse_and_range_checks() {
        assert_eq!(
            "1.5, -2".parse::<GeoPoint>().unwrap(),
            GeoPoint {
                lat: 1.5,
                lon: -2.0
            }
        );
        assert!("91,0".parse::<GeoPoint>().is_err());
        assert!("0,181".parse::<GeoPoint>().is_err());
        assert!("0".parse::<GeoPoint>().is_err());
        assert!("a,b".parse::<GeoPoint>().is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
    }
}
