//! The seeding rules: accounts, users, tokens, prefixes and custom regions from a
//! [`SeedConfig`] (`--config`, the dev world, `POST /__inregion/seed`), as rules over one
//! state that return the changes to commit. The public methods commit one item each;
//! [`Rules::seed_document`] turns a whole document into the changes of one commit (a
//! reset, a per-test account).

use super::addressing::service_by_name;
use super::*;
use crate::auth::KeyRing;

/// What the seeding rules read: a state with a document's earlier items applied on top,
/// without copying the state. A document's items are validated one by one against the
/// state as the items before them left it; copying the state for that is linear in every
/// binding the server holds (measured: 214 ms per per-test account beside 200k bindings,
/// with the writer lock held), while a document changes a handful of records. So the
/// records the document has changed so far are kept apart (`added`) and each read looks
/// there first. Seeding changes only accounts, users, tokens, prefixes and regions, and
/// reads only those (and, of the bindings, whether a prefix has live ones, which no
/// seeding change alters). Where an item replaces a record, the reads below hide what the
/// replacement removed from the base: a token's old secret, a region's old key.
pub(super) struct SeedView<'a> {
    base: &'a State,
    added: State,
}

impl<'a> SeedView<'a> {
    /// `base` with nothing applied on top.
    pub(super) fn new(base: &'a State) -> Self {
        Self {
            base,
            added: State::default(),
        }
    }

    /// Applies a seeding change on top of the base.
    fn apply(&mut self, change: Change) {
        debug_assert!(
            matches!(
                change,
                Change::Account(_)
                    | Change::User(_)
                    | Change::Token(_)
                    | Change::Prefix(_)
                    | Change::Region(_)
            ),
            "not a seeding change: {change:?}"
        );
        self.added.apply(change);
    }

    fn account(&self, id: &AccountId) -> Option<&Account> {
        self.added
            .accounts
            .get(id)
            .or_else(|| self.base.accounts.get(id))
    }

    fn has_account(&self, id: &AccountId) -> bool {
        self.account(id).is_some()
    }

    fn user(&self, email: &str) -> Option<&UserRecord> {
        self.added
            .users
            .get(email)
            .or_else(|| self.base.users.get(email))
    }

    fn token_by_id(&self, id: &TokenId) -> Option<&TokenRecord> {
        match self.added.token_ids.get(id) {
            Some(h) => self.added.tokens.get(h),
            None => self
                .base
                .token_ids
                .get(id)
                .and_then(|h| self.base.tokens.get(h)),
        }
    }

    /// The token whose secret is `secret`. The document's tokens are hashed with the
    /// ring's primary key, the first the ring tries, so looking among them first finds
    /// what one merged map would; a base token the document replaced (same id) is gone.
    fn find_token(&self, ring: KeyRing<'_>, secret: &str) -> Option<&TokenRecord> {
        auth::find_token(&self.added.tokens, ring, secret).or_else(|| {
            auth::find_token(&self.base.tokens, ring, secret)
                .filter(|t| !self.added.token_ids.contains_key(&t.id))
        })
    }

    fn prefix(&self, id: &PrefixId) -> Option<&Prefix> {
        self.added
            .prefixes
            .get(id)
            .or_else(|| self.base.prefixes.get(id))
    }

    /// Every prefix, each once (the document's version where it changed one).
    fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.added.prefixes.values().chain(
            self.base
                .prefixes
                .values()
                .filter(|p| !self.added.prefixes.contains_key(&p.id)),
        )
    }

    /// Whether the prefix has live bindings (seeding never changes bindings).
    fn prefix_has_live_bindings(&self, id: &PrefixId) -> bool {
        self.base
            .live_by_prefix
            .get(id)
            .is_some_and(|s| !s.is_empty())
    }

    fn region(&self, id: &RegionId) -> Option<&CustomRegion> {
        self.added
            .regions
            .get(id)
            .or_else(|| self.base.regions.get(id))
    }

    /// The region with key `key`; a base region the document re-keyed no longer has its
    /// old key.
    fn region_by_key(&self, key: &RegionKey) -> Option<RegionId> {
        self.added.region_by_key.get(key).copied().or_else(|| {
            self.base
                .region_by_key
                .get(key)
                .copied()
                .filter(|id| !self.added.regions.contains_key(id))
        })
    }
}

impl Rules<'_> {
    /// Creates or updates an account (idempotent).
    pub(super) fn seed_account(
        &self,
        v: &SeedView<'_>,
        seed: &AccountSeed,
    ) -> Result<(Vec<Change>, ()), AdminError> {
        let a = Account {
            id: seed.id.clone(),
            name: seed.name.clone(),
            entitlements: seed.entitlements.iter().copied().collect(),
        };
        if v.account(&a.id) == Some(&a) {
            return Ok((Vec::new(), ()));
        }
        Ok((vec![Change::Account(a)], ()))
    }

    /// Creates or updates a user with a global API key (only its keyed digest is stored).
    pub(super) fn seed_user(
        &self,
        v: &SeedView<'_>,
        seed: &UserSeed,
        key_hash: SecretHash,
    ) -> Result<(Vec<Change>, ()), AdminError> {
        let email = seed.email.to_ascii_lowercase();
        if !email.contains('@') {
            return Err(AdminError::Invalid(format!("email {:?}", seed.email)));
        }
        if let Some(a) = seed.roles.keys().find(|a| !v.has_account(a)) {
            return Err(AdminError::NotFound(format!("account {a}")));
        }
        let u = UserRecord {
            email: email.clone(),
            key_hash,
            key_scheme: HashScheme::HmacSha256,
            roles: seed.roles.clone(),
        };
        if v.user(&email) == Some(&u) {
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
        v: &SeedView<'_>,
        ctx: &mut Ctx<'_>,
        seed: &TokenSeed,
        ring: KeyRing<'_>,
    ) -> Result<(Vec<Change>, TokenId), AdminError> {
        let hash = ring.primary.hash(&seed.secret);
        if !auth::is_token_syntax(&seed.secret) {
            return Err(AdminError::Invalid(
                "token secret must be 20+ characters of [A-Za-z0-9_-]".into(),
            ));
        }
        if let Some(a) = seed.accounts.iter().find(|a| !v.has_account(a)) {
            return Err(AdminError::NotFound(format!("account {a}")));
        }
        let existing = v.find_token(ring, &seed.secret);
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
        let same = v.token_by_id(&id).is_some_and(|old| old == &t);
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
        v: &SeedView<'_>,
        ctx: &mut Ctx<'_>,
        seed: &PrefixSeed,
        now: Timestamp,
    ) -> Result<(Vec<Change>, PrefixId), AdminError> {
        if !v.has_account(&seed.account) {
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
            Some(id) => v.prefix(id),
            None => v
                .prefixes()
                .find(|p| p.cidr == cidr && p.account_id == seed.account),
        };
        let id = match (existing, &seed.id) {
            (Some(p), _) => p.id.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => PrefixId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
        };
        if let Some(other) = v.prefixes().find(|p| p.id != id && p.cidr.overlaps(&cidr)) {
            return Err(AdminError::Conflict(format!(
                "{cidr} overlaps prefix {} ({})",
                other.id, other.cidr
            )));
        }
        if let Some(p) = existing {
            if (p.account_id != seed.account || p.cidr != cidr) && v.prefix_has_live_bindings(&p.id)
            {
                return Err(AdminError::Conflict(format!(
                    "prefix {} has bindings; its account and CIDR cannot change",
                    p.id
                )));
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
        v: &SeedView<'_>,
        seed: &RegionSeed,
        now: Timestamp,
    ) -> Result<(Vec<Change>, RegionId), AdminError> {
        let r = self;
        if !v.has_account(&seed.account) {
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
            .or_else(|| v.region_by_key(&seed.key))
            .unwrap_or_else(|| {
                RegionId::from_uuid(derived_uuid(&format!("custom-region:{}", seed.key)))
            });
        if r.managed.key_by_id.contains_key(&id) {
            return Err(AdminError::Conflict(format!("{id} is a managed region id")));
        }
        if let Some(other) = v.region_by_key(&seed.key).filter(|o| *o != id) {
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
        let old = v.region(&id);
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
    /// [`ControlPlane::seed`]: accounts, users, tokens, prefixes, regions). `base` is
    /// read, never copied ([`SeedView`]).
    pub(super) fn seed_document(
        &self,
        ctx: &mut Ctx<'_>,
        base: &State,
        cfg: &SeedConfig,
        ring: KeyRing<'_>,
        now: Timestamp,
    ) -> Result<Vec<Change>, AdminError> {
        let mut v = SeedView::new(base);
        let mut out = Vec::new();
        let mut take = |v: &mut SeedView<'_>, changes: Vec<Change>| {
            for c in changes {
                v.apply(c.clone());
                out.push(c);
            }
        };
        for a in &cfg.accounts {
            let (c, ()) = self.seed_account(&v, a)?;
            take(&mut v, c);
        }
        for u in &cfg.users {
            let (c, ()) = self.seed_user(&v, u, ring.primary.hash(&u.key))?;
            take(&mut v, c);
        }
        for t in &cfg.tokens {
            let (c, _) = self.seed_token(&v, ctx, t, ring)?;
            take(&mut v, c);
        }
        for p in &cfg.prefixes {
            let (c, _) = self.seed_prefix(&v, ctx, p, now)?;
            take(&mut v, c);
        }
        for g in &cfg.regions {
            let (c, _) = self.seed_region(&v, g, now)?;
            take(&mut v, c);
        }
        Ok(out)
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
        self.submit(|r, _ctx| r.seed_account(&SeedView::new(r.st), seed))
    }

    /// Creates or updates an API token (matched by id, else by secret). Only the secret's
    /// keyed digest is stored ([`crate::TokenKey`]); a token stored with the plain SHA-256
    /// of schema version 1 is rewritten with the key. Returns the token's id (random
    /// when neither given nor found: never derived from the secret).
    pub fn add_token(&self, seed: &TokenSeed, _now: Timestamp) -> Result<TokenId, AdminError> {
        self.submit(|r, ctx| r.seed_token(&SeedView::new(r.st), ctx, seed, self.ring(r.st)))
    }

    /// Creates or updates a user with a global API key (only its keyed digest is stored).
    pub fn add_user(&self, seed: &UserSeed, _now: Timestamp) -> Result<(), AdminError> {
        let key_hash = self.token_key.hash(&seed.key);
        self.submit(|r, _ctx| r.seed_user(&SeedView::new(r.st), seed, key_hash))
    }

    /// Creates or updates a BYOIP prefix (matched by id, else by CIDR within the
    /// account). Prefixes never overlap. Returns the prefix id.
    pub fn add_prefix(&self, seed: &PrefixSeed, now: Timestamp) -> Result<PrefixId, AdminError> {
        self.submit(|r, ctx| r.seed_prefix(&SeedView::new(r.st), ctx, seed, now))
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
        self.submit(|r, _ctx| r.seed_region(&SeedView::new(r.st), seed, now))
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
            let changes = r.seed_document(ctx, r.st, cfg, self.ring(r.st), now)?;
            Ok((changes, ()))
        })
    }
}
