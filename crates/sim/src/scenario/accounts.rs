//! `[[accounts]]` and `[[prefixes]]`: who owns which BYOIP prefix.

use super::raw::{RawAccount, RawPrefix};
use super::values::Validator;
use super::{Account, Prefix, ScenarioError};
use ipnet::IpNet;

impl Validator<'_> {
    /// `[[accounts]]`: unique, non-empty ids and known entitlements. A file without
    /// accounts gets one, `acct`, with both entitlements, so that small scenarios need
    /// not spell it out.
    pub(super) fn accounts(&self, raw: &[RawAccount]) -> Result<Vec<Account>, ScenarioError> {
        let mut accounts: Vec<Account> = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            let key = format!("accounts[{i}]");
            if a.id.trim().is_empty() {
                return Err(self.err(format!("{key}.id"), "must not be empty"));
            }
            if accounts.iter().any(|x| x.id == a.id) {
                return Err(self.err(format!("{key}.id"), format!("duplicate account {:?}", a.id)));
            }
            let (regional_services, regional_services_byoip) =
                self.entitlements(&key, a.entitlements.as_deref())?;
            accounts.push(Account {
                id: a.id.clone(),
                regional_services,
                regional_services_byoip,
            });
        }
        if accounts.is_empty() {
            accounts.push(Account {
                id: "acct".into(),
                regional_services: true,
                regional_services_byoip: true,
            });
        }
        Ok(accounts)
    }

    /// An account's `entitlements` as (regional services, regional services BYOIP); both
    /// when the key is left out, only the listed ones when it is given.
    fn entitlements(
        &self,
        key: &str,
        list: Option<&[String]>,
    ) -> Result<(bool, bool), ScenarioError> {
        let Some(list) = list else {
            return Ok((true, true));
        };
        let (mut regional_services, mut byoip) = (false, false);
        for (j, e) in list.iter().enumerate() {
            match e.as_str() {
                "regional_services" => regional_services = true,
                "regional_services_byoip" => byoip = true,
                other => {
                    return Err(self.err(
                        format!("{key}.entitlements[{j}]"),
                        format!("unknown entitlement {other:?}; expected regional_services or regional_services_byoip"),
                    ))
                }
            }
        }
        Ok((regional_services, byoip))
    }

    /// The index of the account that `key` names (`id`), the first account when it is
    /// left out.
    pub(super) fn account_index(
        &self,
        accounts: &[Account],
        key: &str,
        id: Option<&String>,
    ) -> Result<usize, ScenarioError> {
        match id {
            None => Ok(0),
            Some(id) => accounts
                .iter()
                .position(|a| &a.id == id)
                .ok_or_else(|| self.err(key, format!("unknown account {id:?}"))),
        }
    }

    /// `[[prefixes]]`: unique ids, CIDRs, and accounts that exist.
    pub(super) fn prefixes(
        &self,
        raw: &[RawPrefix],
        accounts: &[Account],
    ) -> Result<Vec<Prefix>, ScenarioError> {
        let mut prefixes: Vec<Prefix> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let key = format!("prefixes[{i}]");
            if prefixes.iter().any(|x| x.id == p.id) {
                return Err(self.err(format!("{key}.id"), format!("duplicate prefix {:?}", p.id)));
            }
            let cidr: IpNet = p.cidr.trim().parse().map_err(|_| {
                self.err(format!("{key}.cidr"), format!("{:?} is not a CIDR", p.cidr))
            })?;
            prefixes.push(Prefix {
                id: p.id.clone(),
                cidr,
                account: self.account_index(
                    accounts,
                    &format!("{key}.account"),
                    p.account.as_ref(),
                )?,
                approved: p.approved,
            });
        }
        Ok(prefixes)
    }
}
