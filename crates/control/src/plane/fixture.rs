//! The control plane as a test fixture: reset to the start state, per-test accounts,
//! snapshots. Each is one commit, so a reader sees the world before it or after it,
//! never a mixture, and a change-feed reader from before a reset or a restore is told to
//! re-read everything.

use super::*;
use crate::store::{Snapshot, SnapshotError};
use inregion_model::Permission;

/// What [`ControlPlane::create_test_account`] creates: an account with both
/// entitlements, a token on it, and an approved prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestAccountRequest {
    /// Display name (default `test account`).
    pub name: Option<String>,
    /// The token's permission groups (default: every one).
    pub permissions: Option<Vec<Permission>>,
    /// The prefix; `None` allocates one from a documentation range.
    pub cidr: Option<String>,
    /// With no `cidr`: allocate an IPv4 /28 (from the documentation ranges 192.0.2.0/24,
    /// 198.51.100.0/24 and 203.0.113.0/24, then the benchmarking range 198.18.0.0/15) instead
    /// of an IPv6 /48 (from RFC 9637's 3fff::/20, then 2001:db8:8000::/33).
    pub ipv4: bool,
}

/// A per-test account, as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestAccount {
    /// The account.
    pub account_id: AccountId,
    /// The token's secret (shown once; only its digest is stored).
    pub token: String,
    /// The token's id.
    pub token_id: TokenId,
    /// The prefix.
    pub prefix_id: PrefixId,
    /// Its CIDR.
    pub cidr: Cidr,
}

/// `a:b:c::/48`.
fn v6_at(a: u16, b: u16, c: u16) -> Option<Cidr> {
    ipnet::Ipv6Net::new(std::net::Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0), 48)
        .ok()
        .map(|n| Cidr::from_net(ipnet::IpNet::V6(n)))
}

/// The first and last address of `c`, as numbers (IPv4 in the low 32 bits).
fn span(c: &Cidr) -> (u128, u128) {
    match c.net() {
        ipnet::IpNet::V4(n) => (
            u32::from(n.network()).into(),
            u32::from(n.broadcast()).into(),
        ),
        ipnet::IpNet::V6(n) => (n.network().into(), n.broadcast().into()),
    }
}

/// The documentation blocks a per-test account's prefix is taken from, in the order they
/// are tried: an IPv4 /28 or an IPv6 /48.
fn candidates(ipv4: bool) -> Box<dyn Iterator<Item = Cidr>> {
    if ipv4 {
        // RFC 5737's three documentation /24s, then RFC 2544's 198.18.0.0/15.
        Box::new(
            [
                "192.0.2.0/24",
                "198.51.100.0/24",
                "203.0.113.0/24",
                "198.18.0.0/15",
            ]
            .iter()
            .filter_map(|r| r.parse::<ipnet::Ipv4Net>().ok())
            .flat_map(|r| r.subnets(28).into_iter().flatten())
            .map(|n| Cidr::from_net(ipnet::IpNet::V4(n))),
        )
    } else {
        // RFC 9637's 3fff::/20 first (rarely used by hand; the first 2^20 of its /48s
        // are tried), then the upper half of RFC 3849's 2001:db8::/32.
        let rfc9637 = (0u32..1 << 20).filter_map(|i| v6_at(0x3fff, (i >> 16) as u16, i as u16));
        let rfc3849 = (0x8000u16..=0xffff).filter_map(|i| v6_at(0x2001, 0x0db8, i));
        Box::new(rfc9637.chain(rfc3849))
    }
}

/// The first documentation block ([`candidates`]) that overlaps no prefix.
///
/// Asking every prefix about every block tried cost the number of per-test accounts times
/// the number of prefixes, per account: quadratic over a test suite's run. So the
/// family's prefixes become one ordered map of disjoint address ranges (overlapping ones
/// merged, should any exist), and each block is one lookup: the range starting last at or
/// before the block's end overlaps it exactly when it ends at or after the block's start.
fn allocate(st: &State, ipv4: bool) -> Option<Cidr> {
    let mut spans: Vec<(u128, u128)> = st
        .prefixes
        .values()
        .filter(|p| p.cidr.is_ipv6() != ipv4)
        .map(|p| span(&p.cidr))
        .collect();
    spans.sort_unstable();
    let mut taken: BTreeMap<u128, u128> = BTreeMap::new();
    let mut open: Option<(u128, u128)> = None;
    for (first, last) in spans {
        open = match open {
            Some((f, l)) if first <= l.saturating_add(1) => Some((f, l.max(last))),
            Some(done) => {
                taken.insert(done.0, done.1);
                Some((first, last))
            }
            None => Some((first, last)),
        };
    }
    if let Some((f, l)) = open {
        taken.insert(f, l);
    }
    candidates(ipv4).find(|c| {
        let (first, last) = span(c);
        taken
            .range(..=last)
            .next_back()
            .is_none_or(|(_, &end)| end < first)
    })
}

impl ControlPlane {
    /// Returns the control plane to its start state: every record removed, then the
    /// `seeds` applied (the dev world, `--config`), all in one commit. Keys adopted from
    /// restored snapshots are kept. Change-feed readers from before it must re-read
    /// everything ([`FeedError::TooFarBehind`]).
    pub fn reset(&self, seeds: &[SeedConfig], now: Timestamp) -> Result<(), AdminError> {
        block_on(self.reset_async(seeds, now))
    }

    /// [`Self::reset`] for async callers.
    pub async fn reset_async(
        &self,
        seeds: &[SeedConfig],
        now: Timestamp,
    ) -> Result<(), AdminError> {
        self.submit_async(|r, ctx| {
            let mut base = State {
                adopted_keys: r.st.adopted_keys.clone(),
                ..State::default()
            };
            let mut changes = vec![Change::Clear];
            for cfg in seeds {
                let c = r.seed_document(ctx, &base, cfg, self.ring(r.st), now)?;
                for ch in &c {
                    base.apply(ch.clone());
                }
                changes.extend(c);
            }
            Ok((changes, ()))
        })
        .await
    }

    /// Creates an account with both entitlements, a token with the requested permission
    /// groups (all by default) and an approved prefix, in one commit: one call per test,
    /// so that tests sharing a server do not see each other's objects.
    pub fn create_test_account(
        &self,
        req: &TestAccountRequest,
        now: Timestamp,
    ) -> Result<TestAccount, AdminError> {
        block_on(self.create_test_account_async(req, now))
    }

    /// [`Self::create_test_account`] for async callers.
    pub async fn create_test_account_async(
        &self,
        req: &TestAccountRequest,
        now: Timestamp,
    ) -> Result<TestAccount, AdminError> {
        self.submit_async(|r, ctx| {
            let internal = StoreError::internal;
            let account_id = AccountId::parse(&ctx.ids.hex32()).map_err(internal)?;
            let token_id = TokenId::parse(&ctx.ids.hex32()).map_err(internal)?;
            let prefix_id = PrefixId::parse(&ctx.ids.hex32()).map_err(internal)?;
            let token = format!("inr_{}", ctx.ids.hex32());
            let cidr = match &req.cidr {
                Some(c) => Cidr::parse_strict(c).map_err(|e| AdminError::Invalid(e.to_string()))?,
                None => allocate(r.st, req.ipv4).ok_or_else(|| {
                    AdminError::Conflict(
                        "every block of the documentation range is taken; reset the server \
                         or give a cidr"
                            .into(),
                    )
                })?,
            };
            let cfg = SeedConfig {
                accounts: vec![AccountSeed {
                    id: account_id.clone(),
                    name: req.name.clone().unwrap_or_else(|| "test account".into()),
                    entitlements: vec![
                        Entitlement::RegionalServices,
                        Entitlement::RegionalServicesByoip,
                    ],
                }],
                tokens: vec![TokenSeed {
                    id: Some(token_id.clone()),
                    name: "test account token".into(),
                    secret: token.clone(),
                    accounts: vec![account_id.clone()],
                    permissions: req
                        .permissions
                        .clone()
                        .unwrap_or_else(|| Permission::ALL.to_vec()),
                    not_before: None,
                    expires_on: None,
                    allowed_ips: Vec::new(),
                    revoked: false,
                }],
                users: Vec::new(),
                prefixes: vec![PrefixSeed {
                    account: account_id.clone(),
                    id: Some(prefix_id.clone()),
                    cidr: cidr.to_string(),
                    asn: 64496,
                    description: "test account prefix".into(),
                    approved: true,
                    service: None,
                }],
                regions: Vec::new(),
                faults: Vec::new(),
            };
            let changes = r.seed_document(ctx, r.st, &cfg, self.ring(r.st), now)?;
            Ok((
                changes,
                TestAccount {
                    account_id,
                    token,
                    token_id,
                    prefix_id,
                    cidr,
                },
            ))
        })
        .await
    }

    /// Every record, the keys its digests were made with, and the clock offset the
    /// caller keeps (the server's admin clock), as a [`Snapshot`].
    pub fn snapshot(&self, now: Timestamp, clock_offset_us: i64) -> Snapshot {
        let st = self.read_state();
        let mut keys = vec![self.token_key.clone()];
        keys.extend(st.adopted_keys.iter().cloned());
        Snapshot::of(&st, &keys, now, clock_offset_us)
    }

    /// Replaces every record with the snapshot's, in one commit, and adopts its keys (its
    /// tokens keep working). Bindings take the restore's version, so the change feed
    /// sees them all as changed. A snapshot that does not decode, refers to records it
    /// lacks or is of a newer format changes nothing. The caller restores the clock
    /// offset ([`Snapshot::clock_offset_us`]).
    pub fn restore(&self, snapshot: Snapshot) -> Result<(), RestoreError> {
        block_on(self.restore_async(snapshot))
    }

    /// [`Self::restore`] for async callers.
    pub async fn restore_async(&self, snapshot: Snapshot) -> Result<(), RestoreError> {
        let records = snapshot.into_changes()?;
        self.submit_async(|_r, ctx| {
            let mut changes = Vec::with_capacity(records.len() + 1);
            changes.push(Change::Clear);
            for c in records.iter().cloned() {
                changes.push(match c {
                    Change::Binding(mut b) => {
                        b.version = ctx.version;
                        Change::Binding(b)
                    }
                    other => other,
                });
            }
            Ok::<_, RestoreError>((changes, ()))
        })
        .await
    }
}

/// Why [`ControlPlane::restore`] refused a snapshot or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// 400 / 1905: the snapshot is malformed, of a newer format, or inconsistent.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// 500: the store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError for RestoreError {
    fn code(&self) -> u32 {
        match self {
            RestoreError::Snapshot(_) => 1905,
            RestoreError::Store(e) => e.code(),
        }
    }
    fn http_status(&self) -> u16 {
        match self {
            RestoreError::Snapshot(_) => 400,
            RestoreError::Store(e) => e.http_status(),
        }
    }
    fn should_retry(&self) -> Option<bool> {
        match self {
            RestoreError::Snapshot(_) => None,
            RestoreError::Store(e) => e.should_retry(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures;
    use proptest::prelude::*;

    /// A state holding one prefix per CIDR (of one account, ids 0, 1, ...).
    fn holding(cidrs: impl IntoIterator<Item = Cidr>) -> State {
        let account = fixtures::account();
        let mut st = State::default();
        for (i, c) in cidrs.into_iter().enumerate() {
            let mut p = fixtures::prefix(&account);
            p.id = PrefixId::parse(&format!("{i:032x}")).unwrap();
            p.cidr = c;
            st.apply(Change::Prefix(p));
        }
        st
    }

    /// The plain model: the first block that no prefix overlaps, asking every prefix.
    fn first_free(st: &State, ipv4: bool) -> Option<Cidr> {
        candidates(ipv4).find(|c| !st.prefixes.values().any(|p| p.cidr.overlaps(c)))
    }

    /// Prefixes in and around the blocks tried, of every length, overlapping each other
    /// at times (the rules refuse that, the allocator must not count on it).
    fn cidr() -> impl Strategy<Value = Cidr> {
        let v4 = (
            prop::sample::select(vec![
                [192u8, 0, 2, 0],
                [198, 51, 100, 0],
                [203, 0, 113, 0],
                [198, 18, 0, 0],
                [198, 19, 255, 0],
                [10, 0, 0, 0],
            ]),
            any::<u8>(),
            14u8..=32,
        )
            .prop_map(|(base, low, len)| {
                let a = std::net::Ipv4Addr::new(base[0], base[1], base[2], base[3] | (low & 0xf0));
                Cidr::from_net(ipnet::IpNet::V4(
                    ipnet::Ipv4Net::new(a, len).unwrap().trunc(),
                ))
            });
        let v6 = (
            prop::sample::select(vec![0x3fffu16, 0x2001]),
            0u16..4,
            any::<u16>(),
            36u8..=64,
        )
            .prop_map(|(a, b, c, len)| {
                let b = if a == 0x2001 { 0x0db8 } else { b };
                let c = if a == 0x2001 {
                    0x8000 | (c & 0x3)
                } else {
                    c & 0x7
                };
                let addr = std::net::Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0);
                Cidr::from_net(ipnet::IpNet::V6(
                    ipnet::Ipv6Net::new(addr, len).unwrap().trunc(),
                ))
            });
        prop_oneof![v4, v6]
    }

    proptest! {
        #[test]
        fn the_allocator_finds_the_first_block_no_prefix_overlaps(
            cidrs in prop::collection::vec(cidr(), 0..40),
        ) {
            let st = holding(cidrs);
            for ipv4 in [true, false] {
                prop_assert_eq!(allocate(&st, ipv4), first_free(&st, ipv4));
            }
        }
    }

    #[test]
    fn a_documentation_range_taken_whole_moves_the_allocator_to_the_next() {
        let st = holding(
            ["192.0.2.0/24", "198.51.100.0/25", "198.51.100.128/26"]
                .map(|c| Cidr::parse_strict(c).unwrap()),
        );
        assert_eq!(
            allocate(&st, true).map(|c| c.to_string()).as_deref(),
            Some("198.51.100.192/28")
        );
        assert_eq!(
            allocate(&st, false).map(|c| c.to_string()).as_deref(),
            Some("3fff::/48")
        );
    }
}
