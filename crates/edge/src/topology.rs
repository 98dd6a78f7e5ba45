//! The fixed part of the world: data centers, regions and the round-trip-time model.
//!
//! A [`Topology`] is immutable once built and shared with an `Arc`; health, tables and
//! flows live in [`Edge`](crate::Edge).

use std::fmt;

use inregion_model::{GeoPoint, Iata, ReferenceData, RegionKey};

/// Index of a data center in its [`Topology`] (dense, `0..topology.dc_count()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DcId(pub u16);

impl DcId {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for DcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dc#{}", self.0)
    }
}

/// Index of a region in its [`Topology`] (dense, `0..topology.region_count()`); the value
/// type of the region tables (`Table<RegionIndex>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionIndex(pub u16);

impl RegionIndex {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RegionIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "region#{}", self.0)
    }
}

/// Round-trip time in microseconds meaning "unknown / unreachable" in an [`RttMatrix`].
pub const RTT_UNREACHABLE: u32 = u32::MAX;

/// The geometric round-trip-time model.
///
/// ```text
/// path_km = great_circle_km × path_stretch
/// hops    = 1 + floor(path_km / km_per_hop)
/// rtt_us  = 2 × path_km / fibre_km_per_ms × 1000 + hops × per_hop_us
/// ```
///
/// and 0 between a data center and itself. The defaults (light in fibre at about 2/3 c,
/// paths 1.5× longer than the great circle, 100 µs per hop of 800 km) give FRA–AMS about
/// 5.6 ms and FRA–IAD about 100 ms, the order of magnitude of public measurements. It is
/// monotonic in distance, so "nearest" and "lowest RTT" agree under it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GreatCircleRtt {
    /// Signal speed in fibre in km per millisecond (2/3 c ≈ 199.86 km/ms).
    pub fibre_km_per_ms: f64,
    /// Fibre path length over great-circle distance (≥ 1).
    pub path_stretch: f64,
    /// Round-trip cost of one hop (routing, queueing) in microseconds (≥ 0).
    pub per_hop_us: f64,
    /// Path length covered by one hop in km (> 0).
    pub km_per_hop: f64,
}

impl Default for GreatCircleRtt {
    fn default() -> Self {
        GreatCircleRtt {
            fibre_km_per_ms: 299_792.458 / 1_000.0 * 2.0 / 3.0,
            path_stretch: 1.5,
            per_hop_us: 100.0,
            km_per_hop: 800.0,
        }
    }
}

impl GreatCircleRtt {
    /// Round-trip time in microseconds over `distance_km` of great circle (clamped to
    /// `u32::MAX - 1`).
    pub fn rtt_us_for_km(&self, distance_km: f64) -> u32 {
        let path_km = distance_km.max(0.0) * self.path_stretch;
        let hops = 1.0 + (path_km / self.km_per_hop).floor();
        let us = 2.0 * path_km / self.fibre_km_per_ms * 1_000.0 + hops * self.per_hop_us;
        us.round().clamp(0.0, f64::from(RTT_UNREACHABLE - 1)) as u32
    }

    /// Round-trip time in microseconds between two points.
    pub fn rtt_us(&self, a: &GeoPoint, b: &GeoPoint) -> u32 {
        self.rtt_us_for_km(a.distance_km(b))
    }

    fn check(&self) -> Result<(), TopologyError> {
        let ok = self.fibre_km_per_ms.is_finite()
            && self.fibre_km_per_ms > 0.0
            && self.path_stretch.is_finite()
            && self.path_stretch >= 1.0
            && self.per_hop_us.is_finite()
            && self.per_hop_us >= 0.0
            && self.km_per_hop.is_finite()
            && self.km_per_hop > 0.0;
        if ok {
            Ok(())
        } else {
            Err(TopologyError::BadRttModel(format!("{self:?}")))
        }
    }
}

/// A measured data-center-to-data-center round-trip-time matrix, in microseconds.
///
/// Row-major, `n × n`; the diagonal must be 0; [`RTT_UNREACHABLE`] marks a pair without
/// a measurement (that pair is never used for forwarding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RttMatrix {
    n: usize,
    us: Vec<u32>,
}

impl RttMatrix {
    /// Checks the shape and the diagonal.
    pub fn new(n: usize, us: Vec<u32>) -> Result<Self, TopologyError> {
        let expected = n.saturating_mul(n);
        if us.len() != expected {
            return Err(TopologyError::MatrixShape {
                expected,
                got: us.len(),
            });
        }
        if let Some(i) = (0..n).find(|&i| us[i * n + i] != 0) {
            return Err(TopologyError::MatrixDiagonal(i));
        }
        Ok(RttMatrix { n, us })
    }

    /// Builds the matrix from a function of `(from, to)` (the diagonal is forced to 0).
    pub fn from_fn(n: usize, mut f: impl FnMut(usize, usize) -> u32) -> Self {
        let us = (0..n * n)
            .map(|k| if k / n == k % n { 0 } else { f(k / n, k % n) })
            .collect();
        RttMatrix { n, us }
    }

    /// Side length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the matrix is 0 × 0.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// RTT from `a` to `b` in microseconds. Panics if either is out of range.
    pub fn get(&self, a: usize, b: usize) -> u32 {
        assert!(
            a < self.n && b < self.n,
            "({a}, {b}) outside a {0}×{0} matrix",
            self.n
        );
        self.us[a * self.n + b]
    }
}

/// How data-center-to-data-center round-trip times are obtained.
#[derive(Clone, Debug, PartialEq)]
pub enum RttModel {
    /// Computed from coordinates; pairs with a data center without coordinates are
    /// unreachable.
    GreatCircle(GreatCircleRtt),
    /// Given (for example measured); its size must match the data-center count.
    Measured(RttMatrix),
}

impl Default for RttModel {
    fn default() -> Self {
        RttModel::GreatCircle(GreatCircleRtt::default())
    }
}

/// One data center as given to [`Topology::from_parts`].
#[derive(Clone, Debug, PartialEq)]
pub struct DcSpec {
    /// IATA code; unique in a topology.
    pub code: Iata,
    /// Coordinates; `None` excludes the data center from nearest-ingress and
    /// forwarding-target choice (it can still be given explicitly as an ingress).
    pub location: Option<GeoPoint>,
}

/// One region as given to [`Topology::from_parts`].
#[derive(Clone, Debug, PartialEq)]
pub struct RegionSpec {
    /// The region key (`eu`).
    pub key: RegionKey,
    /// Member data centers; at least one; duplicates are ignored.
    pub members: Vec<DcId>,
}

/// Why a topology could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// No data center at all.
    #[error("a topology needs at least one data center")]
    NoDataCenters,
    /// More data centers than a [`DcId`] can index.
    #[error("{0} data centers; at most 65535 are supported")]
    TooManyDataCenters(usize),
    /// More regions than a [`RegionIndex`] can index.
    #[error("{0} regions; at most 65535 are supported")]
    TooManyRegions(usize),
    /// The same IATA code twice.
    #[error("data center {0} appears twice")]
    DuplicateDataCenter(Iata),
    /// The same region key twice.
    #[error("region {0} appears twice")]
    DuplicateRegion(RegionKey),
    /// A region without members.
    #[error("region {0} has no member data center")]
    EmptyRegion(RegionKey),
    /// A region member index out of range.
    #[error("region {region}: member {member} is not a data center of this topology")]
    UnknownMember {
        /// The region.
        region: RegionKey,
        /// The bad index.
        member: DcId,
    },
    /// A measured matrix of the wrong size.
    #[error("RTT matrix has {got} entries, expected {expected}")]
    MatrixShape {
        /// `n × n`.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A measured matrix whose diagonal is not 0.
    #[error("RTT matrix: entry ({0}, {0}) must be 0")]
    MatrixDiagonal(usize),
    /// Parameters of the geometric model out of range.
    #[error("RTT model parameters out of range: {0}")]
    BadRttModel(String),
}

/// A data center of a [`Topology`].
#[derive(Clone, Debug, PartialEq)]
pub struct DcInfo {
    /// IATA code.
    pub code: Iata,
    /// Coordinates, if known.
    pub location: Option<GeoPoint>,
}

/// A region of a [`Topology`].
#[derive(Clone, Debug, PartialEq)]
pub struct RegionInfo {
    /// The region key.
    pub key: RegionKey,
    /// Member data centers, ascending.
    pub members: Vec<DcId>,
}

/// Data centers, regions with their membership, and DC-to-DC round-trip times.
///
/// Invariants: at least one data center; at most 65535 data centers and regions; codes
/// and keys unique; every region has a member; `rtt_us(a, a) == 0`.
#[derive(Clone, Debug)]
pub struct Topology {
    dcs: Vec<DcInfo>,
    regions: Vec<RegionInfo>,
    /// Dense membership, `[dc * region_count + region]`.
    member: Vec<bool>,
    /// Row-major DC-to-DC RTT in µs ([`RTT_UNREACHABLE`] = no path).
    rtt: Vec<u32>,
    /// Unit vectors of the DC locations, for nearest-DC search by dot product.
    unit: Vec<Option<[f64; 3]>>,
    /// Model for client-to-DC times (and DC-to-DC when not measured).
    client_rtt: GreatCircleRtt,
}

fn unit_vector(p: &GeoPoint) -> [f64; 3] {
    let (la, lo) = (p.lat.to_radians(), p.lon.to_radians());
    [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()]
}

impl Topology {
    /// All data centers and managed regions of `refdata`, with the geometric RTT model
    /// (default parameters). Data centers without coordinates are kept (usable as an
    /// explicit ingress) but never chosen as nearest ingress or forwarding target.
    pub fn from_reference(refdata: &ReferenceData) -> Result<Self, TopologyError> {
        Self::from_reference_with(refdata, RttModel::default())
    }

    /// [`from_reference`](Self::from_reference) with a chosen RTT model.
    pub fn from_reference_with(
        refdata: &ReferenceData,
        rtt: RttModel,
    ) -> Result<Self, TopologyError> {
        let (dcs, regions) = Self::reference_parts(refdata);
        Self::from_parts(dcs, regions, rtt)
    }

    /// The reference data's data centers and managed regions as the parts
    /// [`from_parts`](Self::from_parts) takes, for callers that add their own (extra
    /// regions, a synthetic data center) before building.
    pub fn reference_parts(refdata: &ReferenceData) -> (Vec<DcSpec>, Vec<RegionSpec>) {
        let dcs = refdata
            .data_centers()
            .iter()
            .map(|d| DcSpec {
                code: d.code,
                location: d.location,
            })
            .collect();
        let regions = refdata
            .regions()
            .iter()
            .enumerate()
            .map(|(r, def)| RegionSpec {
                key: def.key.clone(),
                members: refdata
                    .members(r)
                    .iter()
                    .map(|&i| DcId(u16::try_from(i).unwrap_or(u16::MAX)))
                    .collect(),
            })
            .collect();
        (dcs, regions)
    }

    /// Builds a topology from explicit parts (tests, synthetic worlds). Client-to-DC
    /// times use the default [`GreatCircleRtt`] unless the model is `GreatCircle`, whose
    /// parameters are then used for both.
    pub fn from_parts(
        dcs: Vec<DcSpec>,
        regions: Vec<RegionSpec>,
        rtt: RttModel,
    ) -> Result<Self, TopologyError> {
        let n = dcs.len();
        if n == 0 {
            return Err(TopologyError::NoDataCenters);
        }
        if n > usize::from(u16::MAX) {
            return Err(TopologyError::TooManyDataCenters(n));
        }
        if regions.len() > usize::from(u16::MAX) {
            return Err(TopologyError::TooManyRegions(regions.len()));
        }
        for (i, d) in dcs.iter().enumerate() {
            if dcs[..i].iter().any(|e| e.code == d.code) {
                return Err(TopologyError::DuplicateDataCenter(d.code));
            }
        }
        let nr = regions.len();
        let mut member = vec![false; n * nr];
        let mut infos = Vec::with_capacity(nr);
        for (r, spec) in regions.into_iter().enumerate() {
            if infos.iter().any(|i: &RegionInfo| i.key == spec.key) {
                return Err(TopologyError::DuplicateRegion(spec.key));
            }
            if let Some(&bad) = spec.members.iter().find(|m| m.index() >= n) {
                return Err(TopologyError::UnknownMember {
                    region: spec.key,
                    member: bad,
                });
            }
            let mut members = spec.members;
            members.sort_unstable();
            members.dedup();
            if members.is_empty() {
                return Err(TopologyError::EmptyRegion(spec.key));
            }
            for m in &members {
                member[m.index() * nr + r] = true;
            }
            infos.push(RegionInfo {
                key: spec.key,
                members,
            });
        }
        let (rtt, client_rtt) = match rtt {
            RttModel::GreatCircle(model) => {
                model.check()?;
                let mut m = vec![RTT_UNREACHABLE; n * n];
                for a in 0..n {
                    m[a * n + a] = 0;
                    for b in 0..n {
                        if a == b {
                            continue;
                        }
                        if let (Some(pa), Some(pb)) = (&dcs[a].location, &dcs[b].location) {
                            m[a * n + b] = model.rtt_us(pa, pb);
                        }
                    }
                }
                (m, model)
            }
            RttModel::Measured(matrix) => {
                if matrix.len() != n {
                    return Err(TopologyError::MatrixShape {
                        expected: n * n,
                        got: matrix.len() * matrix.len(),
                    });
                }
                (matrix.us, GreatCircleRtt::default())
            }
        };
        let unit = dcs
            .iter()
            .map(|d| d.location.as_ref().map(unit_vector))
            .collect();
        Ok(Topology {
            dcs: dcs
                .into_iter()
                .map(|d| DcInfo {
                    code: d.code,
                    location: d.location,
                })
                .collect(),
            regions: infos,
            member,
            rtt,
            unit,
            client_rtt,
        })
    }

    /// Number of data centers.
    #[inline]
    pub fn dc_count(&self) -> usize {
        self.dcs.len()
    }

    /// Number of regions.
    #[inline]
    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// All data centers, indexed by [`DcId`].
    pub fn dcs(&self) -> &[DcInfo] {
        &self.dcs
    }

    /// All regions, indexed by [`RegionIndex`].
    pub fn regions(&self) -> &[RegionInfo] {
        &self.regions
    }

    /// One data center. Panics if `dc` is out of range.
    pub fn dc(&self, dc: DcId) -> &DcInfo {
        &self.dcs[dc.index()]
    }

    /// One region. Panics if `region` is out of range.
    pub fn region(&self, region: RegionIndex) -> &RegionInfo {
        &self.regions[region.index()]
    }

    /// The data center with this IATA code.
    pub fn dc_by_code(&self, code: Iata) -> Option<DcId> {
        self.dcs
            .iter()
            .position(|d| d.code == code)
            .map(|i| DcId(i as u16))
    }

    /// The region with this key.
    pub fn region_by_key(&self, key: &str) -> Option<RegionIndex> {
        self.regions
            .iter()
            .position(|r| r.key.as_str() == key)
            .map(|i| RegionIndex(i as u16))
    }

    /// Whether `dc` is a member of `region`. Panics if either is out of range.
    #[inline]
    pub fn is_member(&self, dc: DcId, region: RegionIndex) -> bool {
        assert!(region.index() < self.regions.len(), "unknown {region}");
        assert!(dc.index() < self.dcs.len(), "unknown {dc}");
        self.member[dc.index() * self.regions.len() + region.index()]
    }

    /// Round-trip time between two data centers in microseconds ([`RTT_UNREACHABLE`] when
    /// unknown). Panics if either is out of range.
    #[inline]
    pub fn rtt_us(&self, from: DcId, to: DcId) -> u32 {
        // Both checked: a row-major index alone would read another pair for `to` out of
        // range (e.g. (0, n+1) is (1, 1)).
        assert!(
            from.index() < self.dcs.len() && to.index() < self.dcs.len(),
            "unknown {from} or {to}"
        );
        self.rtt[from.index() * self.dcs.len() + to.index()]
    }

    /// The model used for client-to-data-center times.
    pub fn client_rtt_model(&self) -> &GreatCircleRtt {
        &self.client_rtt
    }

    /// Round-trip time from a client at `point` to `dc`, or `None` when the data center
    /// has no coordinates.
    pub fn client_rtt_us(&self, point: &GeoPoint, dc: DcId) -> Option<u32> {
        let loc = self.dcs[dc.index()].location.as_ref()?;
        Some(self.client_rtt.rtt_us(point, loc))
    }

    /// The nearest data center to `point` among those with coordinates for which
    /// `eligible` is true (ties: lowest index). Distance order equals RTT order under the
    /// geometric model.
    pub fn nearest(
        &self,
        point: &GeoPoint,
        mut eligible: impl FnMut(DcId) -> bool,
    ) -> Option<DcId> {
        let p = unit_vector(point);
        let mut best: Option<(f64, usize)> = None;
        for (i, u) in self.unit.iter().enumerate() {
            let Some(u) = u else { continue };
            // The largest dot product is the smallest central angle.
            let dot = p[0] * u[0] + p[1] * u[1] + p[2] * u[2];
            if best.is_none_or(|(b, _)| dot > b) && eligible(DcId(i as u16)) {
                best = Some((dot, i));
            }
        }
        best.map(|(_, i)| DcId(i as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gp(lat: f64, lon: f64) -> Option<GeoPoint> {
        Some(GeoPoint::new(lat, lon).unwrap())
    }

    fn iata(s: &str) -> Iata {
        Iata::parse(s).unwrap()
    }

    #[test]
    fn out_of_range_pairs_panic_instead_of_reading_another_pair() {
        let m = RttMatrix::from_fn(3, |a, b| (a * 10 + b) as u32);
        assert_eq!(m.get(1, 2), 12);
        assert!(std::panic::catch_unwind(|| m.get(0, 5)).is_err());
        assert!(matches!(
            RttMatrix::new(usize::MAX, vec![]),
            Err(TopologyError::MatrixShape { .. })
        ));
        let topo = Topology::from_reference(&ReferenceData::embedded()).unwrap();
        let n = topo.dc_count() as u16;
        assert!(std::panic::catch_unwind(|| topo.rtt_us(DcId(0), DcId(n + 1))).is_err());
        let eu = topo.region_by_key("eu").unwrap();
        assert!(std::panic::catch_unwind(|| topo.is_member(DcId(n), eu)).is_err());
    }

    #[test]
    fn embedded_reference_builds() {
        let refdata = ReferenceData::embedded();
        let topo = Topology::from_reference(&refdata).unwrap();
        assert_eq!(topo.dc_count(), refdata.data_centers().len());
        assert!(topo.dc_count() > 300);
        let fra = topo.dc_by_code(iata("FRA")).unwrap();
        let ams = topo.dc_by_code(iata("AMS")).unwrap();
        let iad = topo.dc_by_code(iata("IAD")).unwrap();
        let eu = topo.region_by_key("eu").unwrap();
        assert!(topo.is_member(fra, eu));
        assert!(!topo.is_member(iad, eu));
        let fa = topo.rtt_us(fra, ams);
        assert!((3_000..10_000).contains(&fa), "FRA-AMS {fa} us");
        let fi = topo.rtt_us(fra, iad);
        assert!((70_000..130_000).contains(&fi), "FRA-IAD {fi} us");
        assert_eq!(topo.rtt_us(fra, fra), 0);
        assert_eq!(fa, topo.rtt_us(ams, fra));
        // Data centers without coordinates are unreachable in the model.
        if let Some(i) = topo.dcs().iter().position(|d| d.location.is_none()) {
            assert_eq!(topo.rtt_us(fra, DcId(i as u16)), RTT_UNREACHABLE);
        }
    }

    #[test]
    fn rtt_model_is_monotonic_and_documented() {
        let m = GreatCircleRtt::default();
        assert_eq!(m.rtt_us_for_km(0.0), 100);
        let mut last = 0;
        for km in (0..20_000).step_by(250) {
            let r = m.rtt_us_for_km(f64::from(km));
            assert!(r >= last);
            last = r;
        }
        // 1000 km: path 1500 km, 2 hops: 2*1500/199.86*1000 + 200 = 15210.4 us
        assert_eq!(m.rtt_us_for_km(1000.0), 15_210);
    }

    #[test]
    fn from_parts_checks() {
        let a = DcSpec {
            code: iata("AAA"),
            location: gp(0.0, 0.0),
        };
        let b = DcSpec {
            code: iata("BBB"),
            location: gp(0.0, 10.0),
        };
        let key = RegionKey::parse("r").unwrap();
        assert_eq!(
            Topology::from_parts(vec![], vec![], RttModel::default()).unwrap_err(),
            TopologyError::NoDataCenters
        );
        assert!(matches!(
            Topology::from_parts(vec![a.clone(), a.clone()], vec![], RttModel::default()),
            Err(TopologyError::DuplicateDataCenter(_))
        ));
        assert!(matches!(
            Topology::from_parts(
                vec![a.clone()],
                vec![RegionSpec {
                    key: key.clone(),
                    members: vec![]
                }],
                RttModel::default()
            ),
            Err(TopologyError::EmptyRegion(_))
        ));
        assert!(matches!(
            Topology::from_parts(
                vec![a.clone()],
                vec![RegionSpec {
                    key: key.clone(),
                    members: vec![DcId(3)]
                }],
                RttModel::default()
            ),
            Err(TopologyError::UnknownMember { .. })
        ));
        assert!(matches!(
            Topology::from_parts(
                vec![a.clone(), b.clone()],
                vec![],
                RttModel::Measured(RttMatrix::from_fn(3, |_, _| 1))
            ),
            Err(TopologyError::MatrixShape { .. })
        ));
        assert_eq!(
            RttMatrix::new(2, vec![0, 1, 1, 5]).unwrap_err(),
            TopologyError::MatrixDiagonal(1)
        );
        let bad = GreatCircleRtt {
            path_stretch: 0.5,
            ..GreatCircleRtt::default()
        };
        assert!(matches!(
            Topology::from_parts(vec![a.clone()], vec![], RttModel::GreatCircle(bad)),
            Err(TopologyError::BadRttModel(_))
        ));
        let t = Topology::from_parts(
            vec![a, b],
            vec![],
            RttModel::Measured(RttMatrix::new(2, vec![0, 7, 9, 0]).unwrap()),
        )
        .unwrap();
        assert_eq!(t.rtt_us(DcId(0), DcId(1)), 7);
        assert_eq!(t.rtt_us(DcId(1), DcId(0)), 9);
    }

    #[test]
    fn nearest_skips_ineligible_and_unlocated() {
        let dcs = vec![
            DcSpec {
                code: iata("AAA"),
                location: gp(0.0, 0.0),
            },
            DcSpec {
                code: iata("BBB"),
                location: gp(0.0, 20.0),
            },
            DcSpec {
                code: iata("CCC"),
                location: None,
            },
        ];
        let t = Topology::from_parts(dcs, vec![], RttModel::default()).unwrap();
        let p = GeoPoint::new(0.0, 1.0).unwrap();
        assert_eq!(t.nearest(&p, |_| true), Some(DcId(0)));
        assert_eq!(t.nearest(&p, |d| d != DcId(0)), Some(DcId(1)));
        assert_eq!(t.nearest(&p, |d| d == DcId(2)), None);
        assert_eq!(t.client_rtt_us(&p, DcId(2)), None);
        assert!(t.client_rtt_us(&p, DcId(0)).unwrap() > 0);
    }
}
