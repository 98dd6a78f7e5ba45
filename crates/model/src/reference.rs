//! Reference data: the real Cloudflare data centers and the managed region definitions.
//!
//! Both are data files in `crates/model/data/`, embedded at compile time and parsed by
//! [`ReferenceData::embedded`]; callers may load other files with
//! [`ReferenceData::from_texts`]. Region membership is derived from data, never coded:
//! a region lists countries (matched against each data center's country) and/or explicit
//! data-center codes.

use crate::codes::{CodeError, CountryCode, Iata, RegionKey};
use crate::geo::GeoPoint;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The embedded data-center list (Netrvin/cloudflare-colo-list, MIT; see
/// `data/cloudflare-colos/SOURCE.md` and `LICENSE`).
pub const EMBEDDED_DATA_CENTERS_CSV: &str = include_str!("../data/cloudflare-colos/DC-Colos.csv");

/// The embedded managed-region definitions (ours; see the comments in the file for which
/// keys Cloudflare confirms).
pub const EMBEDDED_REGIONS_TOML: &str = include_str!("../data/regions.toml");

/// One Cloudflare data center.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataCenter {
    /// IATA code, the data center's name in logs and `cf-ray` headers (`FRA`).
    pub code: Iata,
    /// Display name (`Frankfurt, Germany`).
    pub name: String,
    /// City.
    pub city: String,
    /// Country's English name.
    pub country_name: String,
    /// ISO country code; drives region membership.
    pub country: CountryCode,
    /// Continent-level grouping from the source (`Europe`, `Asia Pacific`, ...). This is a
    /// geographic label, not a DLS region key.
    pub continent: String,
    /// Coordinates; `None` for the few partner sites the source lists without them. Such
    /// data centers cannot take part in distance models.
    pub location: Option<GeoPoint>,
}

/// Whether a region is defined by Cloudflare for everyone or set up for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// Defined by Cloudflare; available to every entitled account; fetchable by key.
    Managed,
    /// Defined for one account by its account team; fetchable by id only.
    Custom,
}

/// A region definition: which data centers process traffic bound to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionDefinition {
    /// The key bindings use (`eu`).
    pub key: RegionKey,
    /// Display name (`Europe`).
    pub name: String,
    /// Stable id (UUID text, 8-4-4-4-12).
    pub id: uuid::Uuid,
    /// True when the key is confirmed in public Cloudflare sources.
    #[serde(default)]
    pub confirmed: bool,
    /// Free-text remark on where the definition comes from.
    #[serde(default)]
    pub note: String,
    /// Countries whose data centers are members.
    #[serde(default)]
    pub countries: Vec<CountryCode>,
    /// Data centers that are members whatever their country.
    #[serde(default)]
    pub data_centers: Vec<Iata>,
    /// Countries removed from the membership after the rest is applied (for custom
    /// regions defined as "exclusive of ...").
    #[serde(default)]
    pub exclude_countries: Vec<CountryCode>,
}

impl RegionDefinition {
    /// True when `dc` processes traffic bound to this region.
    pub fn contains(&self, dc: &DataCenter) -> bool {
        let included = self.countries.contains(&dc.country) || self.data_centers.contains(&dc.code);
        included && !self.exclude_countries.contains(&dc.country)
    }
}

/// Why reference data could not be loaded. Each variant names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceDataError {
    /// The data-center CSV is malformed.
    #[error("data centers, line {line}: {reason}")]
    DataCenterRow {
        /// 1-based line number in the CSV (header is line 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The same IATA code appears twice.
    #[error("data centers: code {0} appears twice")]
    DuplicateDataCenter(Iata),
    /// The regions TOML does not parse or has a bad value.
    #[error("regions: {0}")]
    RegionsToml(String),
    /// The same region key appears twice.
    #[error("regions: key {0} appears twice")]
    DuplicateRegion(RegionKey),
    /// A region names a data center that the data-center list does not have.
    #[error("region {region}: unknown data center {code}")]
    UnknownDataCenter {
        /// The region's key.
        region: RegionKey,
        /// The unknown code.
        code: Iata,
    },
    /// A region has no member data center at all.
    #[error("region {0}: no data center is a member")]
    EmptyRegion(RegionKey),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionsFile {
    #[serde(default)]
    region: Vec<RegionDefinition>,
}

/// The data centers and managed regions, with membership resolved.
///
/// Invariants: data-center codes are unique; region keys are unique; every region has at
/// least one member; `members(r)` lists indexes into `data_centers` in ascending order.
#[derive(Debug, Clone)]
pub struct ReferenceData {
    data_centers: Vec<DataCenter>,
    regions: Vec<RegionDefinition>,
    members: Vec<Vec<usize>>,
    by_code: HashMap<Iata, usize>,
}

impl ReferenceData {
    /// The embedded defaults: ~340 real data centers and the managed regions.
    pub fn embedded() -> Self {
        Self::from_texts(EMBEDDED_DATA_CENTERS_CSV, EMBEDDED_REGIONS_TOML)
            .expect("embedded reference data is valid (checked by tests)")
    }

    /// Parses a data-center CSV (columns `colo,name,region,city,country,cca2,lat,lon`) and a
    /// regions TOML (`[[region]]` tables).
    pub fn from_texts(
        data_centers_csv: &str,
        regions_toml: &str,
    ) -> Result<Self, ReferenceDataError> {
        let data_centers = parse_data_centers(data_centers_csv)?;
        let file: RegionsFile = toml::from_str(regions_toml)
            .map_err(|e| ReferenceDataError::RegionsToml(e.to_string()))?;
        Self::from_parts(data_centers, file.region)
    }

    /// Builds from already-parsed parts, checking the invariants.
    pub fn from_parts(
        data_centers: Vec<DataCenter>,
        regions: Vec<RegionDefinition>,
    ) -> Result<Self, ReferenceDataError> {
        let mut by_code = HashMap::with_capacity(data_centers.len());
        for (i, dc) in data_centers.iter().enumerate() {
            if by_code.insert(dc.code, i).is_some() {
                return Err(ReferenceDataError::DuplicateDataCenter(dc.code));
            }
        }
        let mut keys = BTreeSet::new();
        let mut members = Vec::with_capacity(regions.len());
        for r in &regions {
            if !keys.insert(r.key.clone()) {
                return Err(ReferenceDataError::DuplicateRegion(r.key.clone()));
            }
            if let Some(code) = r.data_centers.iter().find(|c| !by_code.contains_key(c)) {
                return Err(ReferenceDataError::UnknownDataCenter {
                    region: r.key.clone(),
                    code: *code,
                });
            }
            let m: Vec<usize> = (0..data_centers.len())
                .filter(|&i| r.contains(&data_centers[i]))
                .collect();
            if m.is_empty() {
                return Err(ReferenceDataError::EmptyRegion(r.key.clone()));
            }
            members.push(m);
        }
        Ok(Self {
            data_centers,
            regions,
            members,
            by_code,
        })
    }

    /// All data centers, in file order.
    pub fn data_centers(&self) -> &[DataCenter] {
        &self.data_centers
    }

    /// All region definitions, in file order.
    pub fn regions(&self) -> &[RegionDefinition] {
        &self.regions
    }

    /// The index of a data center by code.
    pub fn data_center_index(&self, code: Iata) -> Option<usize> {
        self.by_code.get(&code).copied()
    }

    /// A data center by code.
    pub fn data_center(&self, code: Iata) -> Option<&DataCenter> {
        self.data_center_index(code).map(|i| &self.data_centers[i])
    }

    /// The index of a region by key.
    pub fn region_index(&self, key: &RegionKey) -> Option<usize> {
        self.regions.iter().position(|r| &r.key == key)
    }

    /// A region by key.
    pub fn region(&self, key: &RegionKey) -> Option<&RegionDefinition> {
        self.region_index(key).map(|i| &self.regions[i])
    }

    /// Indexes (into [`Self::data_centers`]) of the members of region number `region`
    /// (an index into [`Self::regions`]). Panics if `region` is out of range.
    pub fn members(&self, region: usize) -> &[usize] {
        &self.members[region]
    }

    /// Members of the region with this key, or `None` for an unknown key.
    pub fn members_of(&self, key: &RegionKey) -> Option<&[usize]> {
        self.region_index(key).map(|i| self.members(i))
    }
}

fn parse_data_centers(text: &str) -> Result<Vec<DataCenter>, ReferenceDataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ReferenceDataError::DataCenterRow {
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ReferenceDataError::DataCenterRow {
                line: 1,
                reason: format!("missing column {name:?}"),
            })
    };
    let (c_colo, c_name, c_region, c_city, c_country, c_cca2, c_lat, c_lon) = (
        col("colo")?,
        col("name")?,
        col("region")?,
        col("city")?,
        col("country")?,
        col("cca2")?,
        col("lat")?,
        col("lon")?,
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let row_err = |reason: String| ReferenceDataError::DataCenterRow { line, reason };
        let record = record.map_err(|e| row_err(e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("").trim();
        let code = Iata::parse(field(c_colo)).map_err(|e: CodeError| row_err(e.to_string()))?;
        let country = CountryCode::parse(field(c_cca2)).map_err(|e| row_err(e.to_string()))?;
        let location = match (field(c_lat), field(c_lon)) {
            ("", "") => None,
            (lat, lon) => {
                let lat: f64 = lat
                    .parse()
                    .map_err(|_| row_err(format!("latitude {lat:?}")))?;
                let lon: f64 = lon
                    .parse()
                    .map_err(|_| row_err(format!("longitude {lon:?}")))?;
                Some(GeoPoint::new(lat, lon).map_err(|e| row_err(e.to_string()))?)
            }
        };
        out.push(DataCenter {
            code,
            name: field(c_name).to_owned(),
            city: field(c_city).to_owned(),
            country_name: field(c_country).to_owned(),
            country,
            continent: field(c_region).to_owned(),
            location,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> RegionKey {
        RegionKey::parse(s).unwrap()
    }

    #[test]
    fn embedded_data_loads_with_expected_counts() {
        let r = ReferenceData::embedded();
        assert_eq!(r.data_centers().len(), 339);
        let count = |k: &str| r.members_of(&key(k)).unwrap().len();
        // Counts from the source snapshot (api-contract.md §11.2).
        assert_eq!(count("eu"), 41);
        assert_eq!(count("us"), 48);
        assert_eq!(count("ca"), 7);
        assert_eq!(count("au"), 7);
        assert_eq!(count("in"), 20);
        assert_eq!(count("jp"), 4);
        assert_eq!(count("uk"), 2);
        for k in [
            "eu", "us", "ca", "au", "in", "jp", "sg", "kr", "uk", "ch", "br", "za", "isoeu",
            "fedramp",
        ] {
            assert!(r.region(&key(k)).is_some(), "{k}");
        }
        let eu = r.region(&key("eu")).unwrap();
        assert_eq!(eu.countries.len(), 27);
        let fra = r.data_center(Iata::parse("FRA").unwrap()).unwrap();
        assert!(eu.contains(fra));
        assert!(fra.location.is_some());
    }

    #[test]
    fn members_are_sorted_indexes_into_data_centers() {
        let r = ReferenceData::embedded();
        for (i, def) in r.regions().iter().enumerate() {
            let m = r.members(i);
            assert!(m.windows(2).all(|w| w[0] < w[1]));
            for &dc in m {
                assert!(def.contains(&r.data_centers()[dc]));
            }
        }
    }

    #[test]
    fn bad_inputs_are_reported_with_their_place() {
        let csv = "colo,name,region,city,country,cca2,lat,lon\nFRA,F,Europe,F,Germany,DE,50,8\nfra,x,y,z,w,DE,1,1\n";
        let e = ReferenceData::from_texts(csv, "").unwrap_err();
        assert!(
            matches!(e, ReferenceDataError::DataCenterRow { line: 3, .. }),
            "{e}"
        );

        let csv = "colo,name,region,city,country,cca2,lat,lon\nFRA,F,Europe,F,Germany,DE,50,8\n";
        let dup = "[[region]]\nkey='de'\nname='D'\nid='8459eabe-d866-53a2-919d-578b629cacb3'\ncountries=['DE']\n";
        let e = ReferenceData::from_texts(csv, &format!("{dup}{dup}")).unwrap_err();
        assert!(matches!(e, ReferenceDataError::DuplicateRegion(_)), "{e}");
        let empty = "[[region]]\nkey='fr'\nname='F'\nid='8459eabe-d866-53a2-919d-578b629cacb3'\ncountries=['FR']\n";
        assert!(matches!(
            ReferenceData::from_texts(csv, empty).unwrap_err(),
            ReferenceDataError::EmptyRegion(_)
        ));
        let unknown = "[[region]]\nkey='x'\nname='X'\nid='8459eabe-d866-53a2-919d-578b629cacb3'\ndata_centers=['AMS']\n";
        assert!(matches!(
            ReferenceData::from_texts(csv, unknown).unwrap_err(),
            ReferenceDataError::UnknownDataCenter { .. }
        ));
        assert!(matches!(
            ReferenceData::from_texts(csv, "[[region]]\nkey='EU'\n").unwrap_err(),
            ReferenceDataError::RegionsToml(_)
        ));
    }

    #[test]
    fn exclusions_apply_after_inclusions() {
        let csv = "colo,name,region,city,country,cca2,lat,lon\nFRA,F,Europe,F,Germany,DE,50,8\nCDG,P,Europe,P,France,FR,49,2\n";
        let t = "[[region]]\nkey='x'\nname='X'\nid='8459eabe-d866-53a2-919d-578b629cacb3'\ncountries=['DE','FR']\nexclude_countries=['FR']\n";
        let r = ReferenceData::from_texts(csv, t).unwrap();
        assert_eq!(r.members(0), &[0]);
    }
}
