//! Unit tests for every rule and every error of [`ControlPlane`], one module per
//! resource; this file holds the seed document and the [`Fx`] fixture they share.

use super::*;
use inregion_model::Role;

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";
const BARE: &str = "00000000000000000000000000000001"; // regional_services only
const DEMO: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const V6: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PENDING: &str = "cccccccccccccccccccccccccccccccc";
const OTHER_PREFIX: &str = "dddddddddddddddddddddddddddddddd";
const RW: &str = "rw-token-000000000000000000000000";
const RO: &str = "ro-token-000000000000000000000000";
const DLSW: &str = "dls-write-only-000000000000000000";

fn t(h: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + h * 3600)
}

fn seed_doc() -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
name = "Demo"
entitlements = ["regional_services", "regional_services_byoip"]
[[accounts]]
id = "{OTHER}"
entitlements = ["regional_services", "regional_services_byoip"]
[[accounts]]
id = "{BARE}"
entitlements = ["regional_services"]

[[tokens]]
name = "rw"
secret = "{RW}"
accounts = ["{ACCT}", "{BARE}"]
permissions = ["DLS: Write", "IP Prefixes: Write", "Address Maps Write"]
[[tokens]]
name = "ro"
secret = "{RO}"
accounts = ["{ACCT}"]
permissions = ["DLS: Read", "Address Maps Read", "IP Prefixes: Read"]
[[tokens]]
name = "dls-write"
secret = "{DLSW}"
accounts = ["{ACCT}"]
permissions = ["DLS: Write"]

[[prefixes]]
account = "{ACCT}"
id = "{DEMO}"
cidr = "203.0.113.0/24"
asn = 64496
[[prefixes]]
account = "{ACCT}"
id = "{V6}"
cidr = "2001:db8::/32"
asn = 64496
[[prefixes]]
account = "{ACCT}"
id = "{PENDING}"
cidr = "198.51.100.0/24"
asn = 64496
approved = false
[[prefixes]]
account = "{OTHER}"
id = "{OTHER_PREFIX}"
cidr = "192.0.2.0/24"
asn = 64497

[[regions]]
account = "{ACCT}"
key = "acme"
name = "ACME (EU without FR)"
countries = ["DE", "FR", "NL"]
exclude_countries = ["FR"]
[[regions]]
account = "{OTHER}"
key = "theirs"
name = "Theirs"
countries = ["US"]
"#
    ))
    .unwrap()
}

struct Fx {
    cp: ControlPlane,
    rw: Principal,
    ro: Principal,
    dlsw: Principal,
    store: MemoryStore,
}

fn fx_with(config: ControlConfig) -> Fx {
    let store = MemoryStore::new();
    let cp = ControlPlane::open(Box::new(store.clone()), config).unwrap();
    cp.seed(&seed_doc(), t(-100)).unwrap();
    let auth = |s: &str| {
        cp.authenticate(&Credentials::ApiToken(s.into()), None, t(0))
            .unwrap()
    };
    let (rw, ro, dlsw) = (auth(RW), auth(RO), auth(DLSW));
    Fx {
        cp,
        rw,
        ro,
        dlsw,
        store,
    }
}

fn fx() -> Fx {
    fx_with(ControlConfig::default())
}

impl Fx {
    fn create(
        &self,
        prefix: &str,
        cidr: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Binding, CreateBindingError> {
        self.cp
            .create_binding(&self.rw, ACCT, CreateBinding::new(prefix, cidr, key), now)
            .map(|c| c.result)
    }
    fn code<E: ApiError>(r: Result<impl std::fmt::Debug, E>) -> (u32, u16) {
        let e = r.expect_err("expected an error");
        (e.code(), e.http_status())
    }
    fn sb_state(&self, id: &BindingId, prefix: &str, now: Timestamp) -> ProvisioningState {
        self.cp
            .get_service_binding(&self.rw, ACCT, prefix, &id.to_string(), now)
            .unwrap()
            .provisioning
            .state
    }
    fn in_force(&self, now: Timestamp) -> Vec<(String, String)> {
        self.cp
            .bindings_in_force(now)
            .entries
            .into_iter()
            .map(|e| (e.cidr.to_string(), e.region_key.to_string()))
            .collect()
    }
}

mod access;
mod address_maps;
mod addressing;
mod admin;
mod bindings;
mod edges;
mod regions;
mod seeding;
mod write_path;
