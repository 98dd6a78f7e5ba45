//! Operator and simulator writes that bypass the public API's principals: finishing a
//! propagation now, and creating bindings in bulk (benchmarks, simulations). The
//! seeding entry points are in `seeding.rs`. One module for what no API caller can do.

use super::access::{DLS_WRITE, ENT_BINDINGS};
use super::*;

impl ControlPlane {
    /// Finishes a live binding's propagation now (`/__sim/bindings/{id}/activate`).
    /// Already active: no-op.
    pub fn force_activate(&self, binding_id: &str, now: Timestamp) -> Result<(), AdminError> {
        self.submit(|r, ctx| {
            let b = BindingId::parse(binding_id)
                .ok()
                .and_then(|id| r.st.bindings.get(&id))
                .filter(|b| b.is_live())
                .ok_or_else(|| AdminError::NotFound(format!("binding {binding_id}")))?;
            if now >= b.active_at {
                return Ok((Vec::new(), ()));
            }
            let mut nb = b.clone();
            nb.active_at = now.max(b.changed_at);
            nb.version = ctx.version;
            Ok((vec![Change::Binding(nb)], ()))
        })
    }

    /// Creates live bindings in bulk through the same rules as [`Self::create_binding`]
    /// (system principal), in one commit. For benchmarks and simulations that need many
    /// bindings fast. Stops at the first refused item (nothing is committed then).
    pub fn bulk_create_bindings(
        &self,
        account: &str,
        items: &[(String, String, String)],
        now: Timestamp,
    ) -> Result<Vec<BindingId>, (usize, CreateBindingError)> {
        let p = Principal::system();
        let res = self.submit(|r, ctx| -> Result<_, BulkError> {
            let mut st_extra: Vec<BindingRecord> = Vec::with_capacity(items.len());
            let mut seen: std::collections::HashSet<(PrefixId, Cidr)> = Default::default();
            let acct = r
                .access(&p, account, DLS_WRITE, ENT_BINDINGS)
                .map_err(|e| BulkError((0, e.into())))?;
            for (i, (prefix_id, cidr, key)) in items.iter().enumerate() {
                let err = |e: CreateBindingError| BulkError((i, e));
                let key = RegionKey::parse(key)
                    .map_err(|_| err(CreateBindingError::BadRegionKey(key.clone())))?;
                let cidr = Cidr::parse_strict(cidr).map_err(|e| err(e.into()))?;
                let prefix = r
                    .prefix(&acct.id, prefix_id)
                    .ok_or_else(|| err(CreateBindingError::UnknownPrefix(prefix_id.clone())))?;
                if prefix.approved != Approval::Approved {
                    return Err(err(CreateBindingError::PrefixNotApproved(
                        prefix_id.clone(),
                    )));
                }
                if !prefix.cidr.strictly_contains(&cidr) {
                    return Err(err(if cidr == prefix.cidr {
                        CreateBindingError::Conflict(cidr)
                    } else {
                        CreateBindingError::OutsidePrefix {
                            cidr,
                            prefix: prefix.cidr,
                        }
                    }));
                }
                if !r.region_available(&acct.id, &key) {
                    return Err(err(CreateBindingError::UnknownRegion(key.to_string())));
                }
                let k = (prefix.id.clone(), cidr);
                if r.st.live_by_cidr.contains_key(&k) || !seen.insert(k) {
                    return Err(err(CreateBindingError::Conflict(cidr)));
                }
                st_extra.push(r.fresh_binding(ctx, &acct.id, &prefix.id, cidr, key, now));
            }
            let ids = st_extra.iter().map(|b| b.id).collect();
            Ok((st_extra.into_iter().map(Change::Binding).collect(), ids))
        });
        res.map_err(|e| e.0)
    }
}

/// Error plumbing for [`ControlPlane::bulk_create_bindings`].
struct BulkError((usize, CreateBindingError));

impl From<StoreError> for BulkError {
    fn from(e: StoreError) -> Self {
        BulkError((usize::MAX, CreateBindingError::Store(e)))
    }
}

impl From<(usize, CreateBindingError)> for BulkError {
    fn from(e: (usize, CreateBindingError)) -> Self {
        BulkError(e)
    }
}
