//! The seeding rules: accounts, users, tokens, prefixes and custom regions from a
//! [`SeedConfig`] (`--config`, the dev world, `POST /__inregion/seed`), as rules over one
//! state that return the changes to commit. The public methods commit one item each;
//! [`Rules::seed_document`] turns a whole document into the changes of one commit (a
//! reset, a per-test account).

use super::addressing::service_by_name;
use super::*;
use crate::auth::KeyRing;

impl Rules<'_> {
    /// The same rules over another state.
    fn over<'b>(&'b self, st: &'b State) -> Rules<'b> {
        Rules {
            cfg: self.cfg,
            managed: self.managed,
            st,
        }
    }

    /// Creates or updates an account (idempotent).
    pub(super) fn seed_account(&self, seed: &AccountSeed) -> Result<(Vec<Change>, ()), AdminError> {
        let r = self;
        let a = Account {
            id: seed.id.clone(),
            name: seed.name.clone(),
            entitlements: seed.entitlements.iter().copied().collect(),
        };
        if r.st.accounts.get(&a.id) == Some(&a) {
            return Ok((Vec::new(), ()));
        }
        Ok((vec![Change::Account(a)], ()))
    }

    /// Creates or updates a user with a global API key (only its keyed digest is stored).
    pub(super) fn seed_user(
        &self,
        seed: &UserSeed,
        key_hash: SecretHash,
    ) -> Result<(Vec<Change>, ()), AdminError> {
        let r = self;
        let email = seed.email.to_ascii_lowercase();
        if !email.contains('@') {
            return Err(AdminError::Invalid(format!("email {:?}", seed.email)));
        }
        if let Some(a) = seed.roles.keys().find(|a| !r.st.accounts.contains_key(a)) {
            return Err(AdminError::NotFound(format!("account {a}")));
        }
        let u = UserRecord {
            email: email.clone(),
            key_hash,
            key_scheme: HashScheme::HmacSha256,
            roles: seed.roles.clone(),
        };
        if r.st.users.get(&email) == Some(&u) {
            return Ok((Vec::new(), ()));
        }
        Ok((vec![Change::User(u)], ()))
    }

    /// Creates or updates an API token (matched by id, else by secret). Only the secret's
    /// keyed digest is stored ([`crate::TokenKey`]); a token stored with the plain SHA-256
    /// of schema version 1 is rewritten with the key. Returns the token's id (random
    /// when neither given nor found: never derived from the secret).
    pub(super) fn seed_token(
        &self,
        ctx: &mut Ctx<'_>,
        seed: &TokenSeed,
        ring: KeyRing<'_>,
    ) -> Result<(Vec<Change>, TokenId), AdminError> {
        let r = self;
        let hash = ring.primary.hash(&seed.secret);
        if !auth::is_token_syntax(&seed.secret) {
            return Err(AdminError::Invalid(
                "token secret must be 20+ characters of [A-Za-z0-9_-]".into(),
            ));
        }
        if let Some(a) = seed
            .accounts
            .iter()
            .find(|a| !r.st.accounts.contains_key(a))
        {
            return Err(AdminError::NotFound(format!("account {a}")));
        }
        let existing = auth::find_token(&r.st.tokens, ring, &seed.secret);
        let id = match &seed.id {
            Some(id) => id.clone(),
            None => match existing {
                Some(t) => t.id.clone(),
                None => TokenId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
            },
        };
        if let Some(other) = existing.filter(|t| t.id != id) {
            return Err(AdminError::Conflict(format!(
                "the secret is already used by token {}",
                other.id
            )));
        }
        let t = TokenRecord {
            id: id.clone(),
            name: seed.name.clone(),
            secret_hash: hash,
            hash_scheme: HashScheme::HmacSha256,
            accounts: seed.accounts.clone(),
            permissions: seed.permissions.iter().copied().collect(),
            not_before: seed.not_before,
            expires_on: seed.expires_on,
            allowed_ips: seed.allowed_ips.clone(),
            revoked: seed.revoked,
        };
        let same =
            r.st.token_ids
                .get(&id)
                .and_then(|h| r.st.tokens.get(h))
                .is_some_and(|old| old == &t);
        Ok((
            if same {
                Vec::new()
            } else {
                vec![Change::Token(t)]
            },
            id,
        ))
    }

    /// Creates or updates a BYOIP prefix (matched by id, else by CIDR within the
    /// account). Prefixes never overlap. Returns the prefix id.
    pub(super) fn seed_prefix(
        &self,
        ctx: &mut Ctx<'_>,
        seed: &PrefixSeed,
        now: Timestamp,
    ) -> Result<(Vec<Change>, PrefixId), AdminError> {
        let r = self;
        if !r.st.accounts.contains_key(&seed.account) {
            return Err(AdminError::NotFound(format!("account {}", seed.account)));
        }
        let cidr =
            Cidr::parse_strict(&seed.cidr).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let service = match &seed.service {
            None => service_by_name("CDN"),
            Some(n) => service_by_name(n),
        }
        .ok_or_else(|| AdminError::Invalid(format!("service {:?}", seed.service)))?;
        let existing = match &seed.id {
            Some(id) => r.st.prefixes.get(id),
            None => {
                r.st.prefixes
                    .values()
                    .find(|p| p.cidr == cidr && p.account_id == seed.account)
            }
        };
        let id = match (existing, &seed.id) {
            (Some(p), _) => p.id.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => PrefixId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
        };
        if let Some(other) =
            r.st.prefixes
                .values()
                .find(|p| p.id != id && p.cidr.overlaps(&cidr))
        {
            return Err(AdminError::Conflict(format!(
                "{cidr} overlaps prefix {} ({})",
                other.id, other.cidr
            )));
        }
        if let Some(p) = existing {
            if p.account_id != seed.account || p.cidr != cidr {
                let live =
                    r.st.live_by_prefix
                        .get(&p.id)
                        .is_some_and(|s| !s.is_empty());
                if live {
                    return Err(AdminError::Conflict(format!(
                        "prefix {} has bindings; its account and CIDR cannot change",
                        p.id
                    )));
                }
            }
        }
        let approved = if seed.approved {
            Approval::Approved
        } else {
            Approval::Pending
        };
        let pr = Prefix {
            id: id.clone(),
            account_id: seed.account.clone(),
            cidr,
            asn: seed.asn,
            description: seed.description.clone(),
            approved,
            base_service: service,
            created_at: existing.map_or(now, |p| p.created_at),
            modified_at: now,
        };
        let same = existing.is_some_and(|p| {
            Prefix {
                modified_at: p.modified_at,
                ..pr.clone()
            } == *p
        });
        Ok((
            if same {
                Vec::new()
            } else {
                vec![Change::Prefix(pr)]
            },
            id,
        ))
    }

    /// Creates or edits a custom region (matched by id, else by key). Editing its name or
    /// membership bumps `version`. Keys are unique across managed and all custom regions,
    /// so the data plane can resolve a key alone.
    pub(super) fn seed_region(
        &self,
        seed: &RegionSeed,
        now: Timestamp,
    ) -> Result<(Vec<Change>, RegionId), AdminError> {
        let r = self;
        if !r.st.accounts.contains_key(&seed.account) {
            return Err(AdminError::NotFound(format!("account {}", seed.account)));
        }
        if r.managed.by_key.contains_key(&seed.key) {
            return Err(AdminError::Conflict(format!(
                "{} is a managed region key",
                seed.key
            )));
        }
        let id = seed
            .id
            .or_else(|| r.st.region_by_key.get(&seed.key).copied())
            .unwrap_or_else(|| {
                RegionId::from_uuid(derived_uuid(&format!("custom-region:{}", seed.key)))
            });
        if r.managed.key_by_id.contains_key(&id) {
            return Err(AdminError::Conflict(format!("{id} is a managed region id")));
        }
        if let Some(other) = r.st.region_by_key.get(&seed.key).filter(|o| **o != id) {
            return Err(AdminError::Conflict(format!(
                "region key {} is used by region {other}",
                seed.key
            )));
        }
        let def = RegionDefinition {
            key: seed.key.clone(),
            name: seed.name.clone(),
            id: id.as_uuid(),
            confirmed: false,
            note: String::new(),
            countries: seed.countries.clone(),
            data_centers: seed.data_centers.clone(),
            exclude_countries: seed.exclude_countries.clone(),
        };
        let refd = &r.cfg.reference;
        if let Some(dc) = def
            .data_centers
            .iter()
            .find(|c| refd.data_center(**c).is_none())
        {
            return Err(AdminError::Invalid(format!("unknown data center {dc}")));
        }
        if !refd.data_centers().iter().any(|dc| def.contains(dc)) {
            return Err(AdminError::Invalid(format!(
                "region {} has no member data center",
                def.key
            )));
        }
        let old = r.st.regions.get(&id);
        if let Some(o) = old {
            if o.account_id != seed.account {
                return Err(AdminError::Conflict(format!(
                    "region {id} belongs to another account"
                )));
            }
            if o.definition == def {
                return Ok((Vec::new(), id));
            }
        }
        let cr = CustomRegion {
            account_id: seed.account.clone(),
            definition: def,
            version: old.map_or(1, |o| o.version + 1),
            created_at: old.map_or(now, |o| o.created_at),
            modified_at: now,
            version_created_at: now,
        };
        Ok((vec![Change::Region(cr)], id))
    }

    /// A whole seeding document as the changes of one commit, validated item by item
    /// against `base` with the earlier items applied (the order of
    /// [`ControlPlane::seed`]: accounts, users, tokens, prefixes, regions).
    pub(super) fn seed_document(
        &self,
        ctx: &mut Ctx<'_>,
        base: State,
        cfg: &SeedConfig,
        ring: KeyRing<'_>,
        now: Timestamp,
    ) -> Result<(Vec<Change>, State), AdminError> {
        let mut st = base;
        let mut out = Vec::new();
        let mut take = |st: &mut State, changes: Vec<Change>| {
            for c in changes {
                st.apply(c.clone());
                out.push(c);
            }
        };
        for a in &cfg.accounts {
            let (c, ()) = self.over(&st).seed_account(a)?;
            take(&mut st, c);
        }
        for u in &cfg.users {
            let (c, ()) = self.over(&st).seed_user(u, ring.primary.hash(&u.key))?;
            take(&mut st, c);
        }
        for t in &cfg.tokens {
            let (c, _) = self.over(&st).seed_token(ctx, t, ring)?;
            take(&mut st, c);
        }
        for p in &cfg.prefixes {
            let (c, _) = self.over(&st).seed_prefix(ctx, p, now)?;
            take(&mut st, c);
        }
        for g in &cfg.regions {
            let (c, _) = self.over(&st).seed_region(g, now)?;
            take(&mut st, c);
        }
        Ok((out, st))
    }
}

impl ControlPlane {
    /// The keys a stored digest may have been made with (the store's own first).
    pub(super) fn ring<'a>(&'a self, st: &'a State) -> KeyRing<'a> {
        KeyRing {
            primary: &self.token_key,
            adopted: &st.adopted_keys,
        }
    }

    /// Creates or updates an account (idempotent).
    pub fn upsert_account(&self, seed: &AccountSeed, _now: Timestamp) -> Result<(), AdminError> {
        self.submit(|r, _ctx| r.seed_account(seed))
    }

    /// Creates or updates an API token (matched by id, else by secret). Only the secret's
    /// keyed digest is stored ([`crate::TokenKey`]); a token stored with the plain SHA-256
    /// of schema version 1 is rewritten with the key. Returns the token's id (random
    /// when neither given nor found: never derived from the secret).
    pub fn add_token(&self, seed: &TokenSeed, _now: Timestamp) -> Result<TokenId, AdminError> {
        self.submit(|r, ctx| r.seed_token(ctx, seed, self.ring(r.st)))
    }

    /// Creates or updates a user with a global API key (only its keyed digest is stored).
    pub fn add_user(&self, seed: &UserSeed, _now: Timestamp) -> Result<(), AdminError> {
        let key_hash = self.token_key.hash(&seed.key);
        self.submit(|r, _ctx| r.seed_user(seed, key_hash))
    }

    /// Creates or updates a BYOIP prefix (matched by id, else by CIDR within the
    /// account). Prefixes never overlap. Returns the prefix id.
    pub fn add_prefix(&self, seed: &PrefixSeed, now: Timestamp) -> Result<PrefixId, AdminError> {
        self.submit(|r, ctx| r.seed_prefix(ctx, seed, now))
    }

    /// Approves a pending prefix (`"P"` → `"V"`); approving twice is a no-op.
    pub fn approve_prefix(&self, prefix_id: &str, now: Timestamp) -> Result<(), AdminError> {
        self.submit(|r, _ctx| {
            let p = PrefixId::parse(prefix_id)
                .ok()
                .and_then(|id| r.st.prefixes.get(&id))
                .ok_or_else(|| AdminError::NotFound(format!("prefix {prefix_id}")))?;
            if p.approved == Approval::Approved {
                return Ok((Vec::new(), ()));
            }
            let mut np = p.clone();
            np.approved = Approval::Approved;
            np.modified_at = now;
            Ok((vec![Change::Prefix(np)], ()))
        })
    }

    /// Creates or edits a custom region (matched by id, else by key). Editing its name or
    /// membership bumps `version`. Keys are unique across managed and all custom regions,
    /// so the data plane can resolve a key alone.
    pub fn add_custom_region(
        &self,
        seed: &RegionSeed,
        now: Timestamp,
    ) -> Result<RegionId, AdminError> {
        self.submit(|r, _ctx| r.seed_region(seed, now))
    }

    /// Applies a whole seeding document, in order: accounts, users, tokens, prefixes,
    /// regions, as one commit: a document refused at any item changes nothing (the items
    /// before it are not applied either). Idempotent: the same document again commits
    /// nothing.
    pub fn seed(&self, cfg: &SeedConfig, now: Timestamp) -> Result<(), AdminError> {
        if let Some(twice) = cfg.named_twice() {
            return Err(AdminError::Invalid(twice));
        }
        self.submit(|r, ctx| {
            // Cloning the state is the price of validating each item against the ones
            // before it; seeding is rare (start-up, the admin surface).
            let (changes, _) = r.seed_document(ctx, r.st.clone(), cfg, self.ring(r.st), now)?;
            Ok((changes, ()))
        })
    }
}
