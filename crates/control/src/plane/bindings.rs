//! DLS prefix bindings (`/dls/regional_services/prefix_bindings`): list, get, create,
//! re-point and delete. One module for the binding lifecycle as the API changes it;
//! propagation is derived from the records' timestamps (see [`crate::records`]).

use super::access::{WriteKind, DLS_READ, ENT_BINDINGS};
use super::*;

impl<'a> Rules<'a> {
    /// A new live binding created at `now` by the commit of `ctx` (single and bulk
    /// creates).
    pub(super) fn fresh_binding(
        &self,
        ctx: &mut Ctx<'_>,
        account: &AccountId,
        prefix: &PrefixId,
        cidr: Cidr,
        region: RegionKey,
        now: Timestamp,
    ) -> BindingRecord {
        BindingRecord {
            id: BindingId::from_uuid(ctx.ids.uuid()),
            account_id: account.clone(),
            prefix_id: prefix.clone(),
            cidr,
            region,
            previous_region: None,
            created_at: now,
            changed_at: now,
            active_at: self.cfg.settles_at(now),
            deleted_at: None,
            gone_at: None,
            version: ctx.version,
        }
    }

    pub(super) fn live_binding(&self, account: &AccountId, id: &str) -> Option<&'a BindingRecord> {
        let id = BindingId::parse(id).ok()?;
        self.st
            .bindings
            .get(&id)
            .filter(|b| b.is_live() && &b.account_id == account)
    }
}

impl ControlPlane {
    /// `GET /dls/regional_services/prefix_bindings`, ordered by `(created_on, id)`.
    pub fn list_bindings(
        &self,
        p: &Principal,
        account: &str,
        page: &PageRequest,
    ) -> Result<Page<Binding>, ListBindingsError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_BINDINGS)?;
            let per_page = page.per_page()?;
            let start = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
                None => Bound::Unbounded,
                Some(c) => Bound::Excluded(page::decode_binding_cursor(c)?),
            };
            let items: Vec<&BindingRecord> = match r.st.live_order.get(&acct.id) {
                None => Vec::new(),
                Some(set) => set
                    .range((start, Bound::Unbounded))
                    .take(per_page as usize + 1)
                    .filter_map(|(_, id)| r.st.bindings.get(id))
                    .collect(),
            };
            let page = paginate(items, per_page, |b| {
                page::binding_cursor(b.created_at, b.id)
            });
            Ok(Page {
                items: page.items.into_iter().map(BindingRecord::view).collect(),
                per_page: page.per_page,
                next_cursor: page.next_cursor,
            })
        })
    }

    /// `GET /dls/regional_services/prefix_bindings/{id}`.
    pub fn get_binding(
        &self,
        p: &Principal,
        account: &str,
        id: &str,
    ) -> Result<Binding, GetBindingError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_BINDINGS)?;
            r.live_binding(&acct.id, id)
                .map(BindingRecord::view)
                .ok_or_else(|| GetBindingError::NotFound(id.to_owned()))
        })
    }

    write_op! {
        /// `POST /dls/regional_services/prefix_bindings` (§5.5, §7). The binding starts
        /// `provisioning` and becomes active after the propagation delay. A `1200` notice is
        /// added when addresses in the CIDR are already on an address map.
        fn create_binding / create_binding_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreateBinding,
            now: Timestamp,
        ) -> Result<Created<Binding>, CreateBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                // Input validation: presence, then syntax.
                let prefix_id = non_empty(&input.prefix_id)
                    .ok_or(CreateBindingError::MissingField("prefix_id"))?;
                let cidr_text =
                    non_empty(&input.cidr).ok_or(CreateBindingError::MissingField("cidr"))?;
                let key_text = non_empty(&input.region_key)
                    .ok_or(CreateBindingError::MissingField("region_key"))?;
                let key = RegionKey::parse(key_text)
                    .map_err(|_| CreateBindingError::BadRegionKey(key_text.to_owned()))?;
                let cidr = Cidr::parse_strict(cidr_text)?;
                // Existence.
                let prefix = r
                    .prefix(&acct.id, prefix_id)
                    .ok_or_else(|| CreateBindingError::UnknownPrefix(prefix_id.to_owned()))?;
                if prefix.approved != Approval::Approved {
                    return Err(CreateBindingError::PrefixNotApproved(prefix.id.to_string()));
                }
                let whole_prefix = cidr == prefix.cidr;
                if !whole_prefix && !prefix.cidr.strictly_contains(&cidr) {
                    return Err(CreateBindingError::OutsidePrefix {
                        cidr,
                        prefix: prefix.cidr,
                    });
                }
                if !r.region_available(&acct.id, &key) {
                    return Err(CreateBindingError::UnknownRegion(key_text.to_owned()));
                }
                // Conflicts.
                if whole_prefix || r.st.live_by_cidr.contains_key(&(prefix.id.clone(), cidr)) {
                    return Err(CreateBindingError::Conflict(cidr));
                }
                if let Some(limit) = r.cfg.max_bindings_per_prefix {
                    let n = r.st.live_by_prefix.get(&prefix.id).map_or(0, |s| s.len());
                    if n >= limit {
                        return Err(CreateBindingError::TooManyBindings {
                            prefix: prefix.id.to_string(),
                            limit,
                        });
                    }
                }
                let rec = r.fresh_binding(ctx, &acct.id, &prefix.id, cidr, key, now);
                let mut messages = Vec::new();
                let in_use =
                    r.st.maps_by_account
                        .get(&acct.id)
                        .into_iter()
                        .flatten()
                        .filter_map(|id| r.st.maps.get(id))
                        .flat_map(|m| m.ips.iter())
                        .find(|ip| cidr.contains_ip(ip.ip));
                if let Some(ip) = in_use {
                    messages.push(Notice {
                        code: 1200,
                        message: format!(
                            "addresses in {cidr} (e.g. {}) are already on an address map; \
                             traffic to them may be reset while the binding propagates",
                            canonical_ip(ip.ip)
                        ),
                    });
                }
                let view = rec.view();
                Ok((
                    vec![Change::Binding(rec)],
                    Created {
                        result: view,
                        messages,
                    },
                ))
            })
            .await
        }
    }

    write_op! {
        /// `PATCH /dls/regional_services/prefix_bindings/{id}` (§5.6). A different region
        /// restarts propagation; the data plane keeps the region in force now until the new
        /// one has propagated. The same region is a no-op.
        fn patch_binding / patch_binding_async(
            &self,
            p: &Principal,
            account: &str,
            id: &str,
            input: UpdateBinding,
            now: Timestamp,
        ) -> Result<Binding, PatchBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                if let Some(f) = input.other_fields.first() {
                    return Err(PatchBindingError::UnexpectedField(f.clone()));
                }
                let key_text = non_empty(&input.region_key)
                    .ok_or(PatchBindingError::MissingField("region_key"))?;
                let key = RegionKey::parse(key_text)
                    .map_err(|_| PatchBindingError::BadRegionKey(key_text.to_owned()))?;
                let b = r
                    .live_binding(&acct.id, id)
                    .ok_or_else(|| PatchBindingError::NotFound(id.to_owned()))?;
                if !r.region_available(&acct.id, &key) {
                    return Err(PatchBindingError::UnknownRegion(key_text.to_owned()));
                }
                if b.region == key {
                    return Ok((Vec::new(), b.view()));
                }
                let mut nb = b.clone();
                nb.previous_region = b.region_in_force(now).cloned();
                nb.region = key;
                nb.changed_at = now.max(b.created_at);
                nb.active_at = r.cfg.settles_at(nb.changed_at);
                nb.version = ctx.version;
                let view = nb.view();
                Ok((vec![Change::Binding(nb)], view))
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /dls/regional_services/prefix_bindings/{id}` (§5.7). Gone from the API at
        /// once; the data plane keeps what was in force until the deletion has propagated.
        fn delete_binding / delete_binding_async(
            &self,
            p: &Principal,
            account: &str,
            id: &str,
            now: Timestamp,
        ) -> Result<(), DeleteBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                let b = r
                    .live_binding(&acct.id, id)
                    .ok_or_else(|| DeleteBindingError::NotFound(id.to_owned()))?;
                let mut nb = b.clone();
                let at = now.max(b.changed_at);
                nb.deleted_at = Some(at);
                nb.gone_at = Some(r.cfg.settles_at(at));
                nb.version = ctx.version;
                Ok((vec![Change::Binding(nb)], ()))
            })
            .await
        }
    }
}
