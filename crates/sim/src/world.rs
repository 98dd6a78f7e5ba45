//! The world of a run: the topology (reference data less the excluded data centers) and
//! the client points of each population.

use crate::scenario::{ClientPlace, ClientSpec};
use inregion_model::{DataCenter, GeoPoint, ReferenceData, RegionDefinition};

/// A place clients send from.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPoint {
    /// Index of its population (scenario order).
    pub population: usize,
    /// Where.
    pub location: GeoPoint,
    /// Continent label (of the data center it is at, or the nearest one).
    pub continent: String,
    /// Share of the population's weight.
    pub weight: f64,
}

/// Folds case and the common Latin accents, so that `São Paulo` matches `Sao Paulo`.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
                'a'
            }
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
            'ç' | 'Ç' => 'c',
            'ñ' | 'Ñ' => 'n',
            other => other.to_ascii_lowercase(),
        })
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '.')
        .collect()
}

/// The reference data without the `exclude`d data centers; regions keep their remaining
/// members, and a region left without any is dropped.
pub fn filtered_reference(
    refdata: &ReferenceData,
    exclude: &[inregion_model::Iata],
) -> Result<ReferenceData, String> {
    if exclude.is_empty() {
        return Ok(refdata.clone());
    }
    for code in exclude {
        if refdata.data_center(*code).is_none() {
            return Err(format!("unknown data center {code}"));
        }
    }
    let dcs: Vec<DataCenter> = refdata
        .data_centers()
        .iter()
        .filter(|d| !exclude.contains(&d.code))
        .cloned()
        .collect();
    let regions: Vec<RegionDefinition> = refdata
        .regions()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.data_centers.retain(|c| !exclude.contains(c));
            r
        })
        .filter(|r| dcs.iter().any(|d| r.contains(d)))
        .collect();
    ReferenceData::from_parts(dcs, regions).map_err(|e| e.to_string())
}

/// Resolves a place to points (with coordinates) and their continents; each point gets an
/// equal share of `weight`.
pub fn resolve_place(
    refdata: &ReferenceData,
    place: &ClientPlace,
    weight: f64,
    population: usize,
) -> Result<Vec<ClientPoint>, String> {
    let dcs = refdata.data_centers();
    let at_dcs = |matches: &dyn Fn(&DataCenter) -> bool, what: String| {
        let found: Vec<&DataCenter> = dcs
            .iter()
            .filter(|d| d.location.is_some() && matches(d))
            .collect();
        if found.is_empty() {
            return Err(what);
        }
        let share = weight / found.len() as f64;
        Ok(found
            .iter()
            .map(|d| ClientPoint {
                population,
                location: d.location.expect("filtered on location"),
                continent: d.continent.clone(),
                weight: share,
            })
            .collect())
    };
    match place {
        ClientPlace::Country(c) => at_dcs(
            &|d| d.country == *c,
            format!(
                "no data center with coordinates in country {c}; give a city, an IATA code or a lat,lon point instead"
            ),
        ),
        ClientPlace::City(name) => {
            let f = fold(name);
            // An empty name would match the data centers whose city is unknown.
            at_dcs(
                &|d| !f.is_empty() && fold(&d.city) == f,
                format!("no data center in a city named {name:?}; give a country, an IATA code or a lat,lon point instead"),
            )
        }
        ClientPlace::Iata(code) => at_dcs(
            &|d| d.code == *code,
            format!("unknown data center {code} (or it has no coordinates)"),
        ),
        ClientPlace::Point(p) => {
            let nearest = dcs
                .iter()
                .filter_map(|d| d.location.map(|l| (l.distance_km(p), d)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, d)| d.continent.clone())
                .unwrap_or_else(|| "Unknown".into());
            Ok(vec![ClientPoint {
                population,
                location: *p,
                continent: nearest,
                weight,
            }])
        }
    }
}

/// Resolves every population; errors name the population's key.
pub fn resolve_clients(
    refdata: &ReferenceData,
    clients: &[ClientSpec],
) -> Result<Vec<ClientPoint>, (String, String)> {
    let mut out = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        out.extend(resolve_place(refdata, &c.place, c.weight, i).map_err(|m| (c.key.clone(), m))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inregion_model::{CountryCode, Iata};

    #[test]
    fn places_resolve_to_data_center_cities() {
        let r = ReferenceData::embedded();
        let jp = resolve_place(
            &r,
            &ClientPlace::Country(CountryCode::parse("JP").unwrap()),
            4.0,
            0,
        )
        .unwrap();
        assert_eq!(jp.len(), 4);
        assert!(jp
            .iter()
            .all(|p| p.weight == 1.0 && p.continent == "Asia Pacific"));
        let sp = resolve_place(&r, &ClientPlace::City("São Paulo".into()), 1.0, 1).unwrap();
        assert_eq!(sp.len(), 1);
        assert!(resolve_place(&r, &ClientPlace::City("Atlantis".into()), 1.0, 1).is_err());
        let p = GeoPoint::new(48.85, 2.35).unwrap();
        assert_eq!(
            resolve_place(&r, &ClientPlace::Point(p), 1.0, 0).unwrap()[0].continent,
            "Europe"
        );
    }

    #[test]
    fn exclusion_keeps_regions_consistent() {
        let r = ReferenceData::embedded();
        let ams = Iata::parse("AMS").unwrap();
        let f = filtered_reference(&r, &[ams]).unwrap();
        assert_eq!(f.data_centers().len(), r.data_centers().len() - 1);
        assert!(f.data_center(ams).is_none());
        assert!(filtered_reference(&r, &[Iata::parse("ZZZ").unwrap()]).is_err());
    }
}
