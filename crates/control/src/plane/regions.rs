//! DLS regions (`/dls/regions`): the managed regions of the reference data plus each
//! account's custom regions, and the rule that says which regions an account may bind
//! to. One module for everything that reads regions through the API.

use super::access::{DLS_READ, ENT_REGIONS};
use super::*;

impl<'a> Rules<'a> {
    fn custom_view(r: &CustomRegion) -> Region {
        Region {
            id: RegionId::from_uuid(r.definition.id),
            name: r.definition.name.clone(),
            region_key: r.definition.key.clone(),
            created_on: r.created_at,
            modified_on: r.modified_at,
            version: r.version,
            version_created_on: r.version_created_at,
            kind: RegionKind::Custom,
        }
    }

    /// True when `key` is a managed region or one of the account's custom regions.
    pub(super) fn region_available(&self, account: &AccountId, key: &RegionKey) -> bool {
        self.managed.by_key.contains_key(key)
            || self
                .st
                .region_by_key
                .get(key)
                .and_then(|id| self.st.regions.get(id))
                .is_some_and(|r| &r.account_id == account)
    }
}

impl ControlPlane {
    /// `GET /dls/regions`: managed regions plus the account's custom ones, by
    /// `region_key`, optionally filtered by `type` (`managed` / `custom`).
    pub fn list_regions(
        &self,
        p: &Principal,
        account: &str,
        kind: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Region>, ListRegionsError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_REGIONS)?;
            let kind = match kind {
                None => None,
                Some("managed") => Some(RegionKind::Managed),
                Some("custom") => Some(RegionKind::Custom),
                Some(other) => return Err(ListRegionsError::BadType(other.to_owned())),
            };
            let per_page = page.per_page()?;
            let after = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
                None => None,
                Some(c) => Some(page::decode_region_cursor(c)?),
            };
            let mut all: Vec<Region> = Vec::new();
            if kind != Some(RegionKind::Custom) {
                all.extend(r.managed.by_key.values().cloned());
            }
            if kind != Some(RegionKind::Managed) {
                all.extend(
                    r.st.regions
                        .values()
                        .filter(|c| c.account_id == acct.id)
                        .map(Rules::custom_view),
                );
            }
            all.sort_by(|a, b| a.region_key.cmp(&b.region_key));
            let items: Vec<Region> = all
                .into_iter()
                .filter(|x| after.as_ref().is_none_or(|k| &x.region_key > k))
                .take(per_page as usize + 1)
                .collect();
            Ok(paginate(items, per_page, |x| {
                page::region_cursor(&x.region_key)
            }))
        })
    }

    /// `GET /dls/regions/{id}`: by UUID (any region available to the account) or by a
    /// managed region's key (custom regions are fetchable by UUID only, §5.2).
    pub fn get_region(
        &self,
        p: &Principal,
        account: &str,
        id_or_key: &str,
    ) -> Result<Region, GetRegionError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_REGIONS)?;
            let nf = || GetRegionError::NotFound(id_or_key.chars().take(255).collect());
            if let Ok(id) = RegionId::parse(id_or_key) {
                if let Some(k) = r.managed.key_by_id.get(&id) {
                    return Ok(r.managed.by_key[k].clone());
                }
                return r
                    .st
                    .regions
                    .get(&id)
                    .filter(|c| c.account_id == acct.id)
                    .map(Rules::custom_view)
                    .ok_or_else(nf);
            }
            RegionKey::parse(id_or_key)
                .ok()
                .and_then(|k| r.managed.by_key.get(&k).cloned())
                .ok_or_else(nf)
        })
    }
}
