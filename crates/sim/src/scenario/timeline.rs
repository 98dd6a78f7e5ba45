//! `[[timeline]]`: the control-plane operations, checked for syntax and references only.
//! Their effect goes through the control plane's rules when the engine replays them, so
//! that an invalid operation fails with the code the API would return.

use super::raw::RawOp;
use super::values::Validator;
use super::{Account, Op, Prefix, ScenarioError, TimelineOp};
use crate::time::SimTime;
use std::collections::HashMap;

/// The keys an operation may carry, for the operations that exist.
fn keys_of_op(op: &str) -> &'static [&'static str] {
    match op {
        "create_binding" => &["name", "prefix", "cidr", "region"],
        "patch_binding" => &["binding", "region"],
        "delete_binding" => &["binding"],
        "create_address_map" => &["map", "account", "ips"],
        "add_address_map_ip" | "remove_address_map_ip" => &["map", "ip"],
        // An unknown operation is reported by its `op` key, not by its other keys.
        _ => &[
            "name", "prefix", "cidr", "region", "binding", "map", "ips", "ip", "account",
        ],
    }
}

impl Validator<'_> {
    /// `[[timeline]]`: each operation typed, then sorted by time (stable: equal times keep
    /// file order), then checked for names that later operations could not tell apart.
    pub(super) fn timeline(
        &self,
        raw: &[RawOp],
        duration: SimTime,
        accounts: &[Account],
        prefixes: &[Prefix],
    ) -> Result<Vec<TimelineOp>, ScenarioError> {
        let mut timeline = raw
            .iter()
            .enumerate()
            .map(|(i, o)| self.timeline_op(i, o, duration, accounts, prefixes))
            .collect::<Result<Vec<_>, _>>()?;
        timeline.sort_by_key(|o| o.at);
        self.unambiguous_names(&timeline)?;
        Ok(timeline)
    }

    /// One operation: its time within the run, only the keys its kind takes, and the
    /// typed operation.
    fn timeline_op(
        &self,
        index: usize,
        o: &RawOp,
        duration: SimTime,
        accounts: &[Account],
        prefixes: &[Prefix],
    ) -> Result<TimelineOp, ScenarioError> {
        let key = format!("timeline[{index}]");
        let at = self.time(&format!("{key}.at"), &o.at)?;
        if at > duration {
            return Err(self.err(format!("{key}.at"), "is after the scenario's duration"));
        }
        let given = [
            ("name", o.name.is_some()),
            ("prefix", o.prefix.is_some()),
            ("cidr", o.cidr.is_some()),
            ("region", o.region.is_some()),
            ("binding", o.binding.is_some()),
            ("map", o.map.is_some()),
            ("ips", o.ips.is_some()),
            ("ip", o.ip.is_some()),
            ("account", o.account.is_some()),
        ];
        self.only_applicable(&key, "op", &o.op, &given, keys_of_op(&o.op))?;
        let op = self.op(&key, index, o, accounts, prefixes)?;
        Ok(TimelineOp { index, at, op })
    }

    /// The typed operation of `o` (at `key`, the `index`th of the file), with its
    /// required keys present and its prefix and account references resolved.
    fn op(
        &self,
        key: &str,
        index: usize,
        o: &RawOp,
        accounts: &[Account],
        prefixes: &[Prefix],
    ) -> Result<Op, ScenarioError> {
        let need = |name: &str, v: &Option<String>| -> Result<String, ScenarioError> {
            v.clone().ok_or_else(|| {
                self.err(
                    format!("{key}.{name}"),
                    format!("required for op = {:?}", o.op),
                )
            })
        };
        Ok(match o.op.as_str() {
            "create_binding" => {
                let pname = need("prefix", &o.prefix)?;
                let prefix = prefixes.iter().position(|p| p.id == pname).ok_or_else(|| {
                    self.err(format!("{key}.prefix"), format!("unknown prefix {pname:?}"))
                })?;
                Op::CreateBinding {
                    name: o.name.clone().unwrap_or_else(|| format!("#{index}")),
                    prefix,
                    cidr: need("cidr", &o.cidr)?,
                    region: need("region", &o.region)?,
                }
            }
            "patch_binding" => Op::PatchBinding {
                binding: need("binding", &o.binding)?,
                region: need("region", &o.region)?,
            },
            "delete_binding" => Op::DeleteBinding {
                binding: need("binding", &o.binding)?,
            },
            "create_address_map" => Op::CreateAddressMap {
                map: need("map", &o.map)?,
                account: self.account_index(accounts, &format!("{key}.account"), o.account.as_ref())?,
                ips: o.ips.clone().unwrap_or_default(),
            },
            "add_address_map_ip" => Op::AddAddressMapIp {
                map: need("map", &o.map)?,
                ip: need("ip", &o.ip)?,
            },
            "remove_address_map_ip" => Op::RemoveAddressMapIp {
                map: need("map", &o.map)?,
                ip: need("ip", &o.ip)?,
            },
            other => {
                return Err(self.err(
                    format!("{key}.op"),
                    format!("unknown operation {other:?}; expected create_binding, patch_binding, delete_binding, create_address_map, add_address_map_ip or remove_address_map_ip"),
                ))
            }
        })
    }

    /// Later operations refer to bindings and maps by name: two live ones with one name
    /// would make those references ambiguous (a name is free again once its binding is
    /// deleted). `timeline` is in time order.
    fn unambiguous_names(&self, timeline: &[TimelineOp]) -> Result<(), ScenarioError> {
        let mut live_bindings: HashMap<&str, usize> = HashMap::new();
        let mut maps: HashMap<&str, usize> = HashMap::new();
        for t in timeline {
            let (names, name, field, what) = match &t.op {
                Op::CreateBinding { name, .. } => (&mut live_bindings, name, "name", "binding"),
                Op::CreateAddressMap { map, .. } => (&mut maps, map, "map", "address map"),
                Op::DeleteBinding { binding } => {
                    live_bindings.remove(binding.as_str());
                    continue;
                }
                _ => continue,
            };
            if let Some(first) = names.insert(name, t.index) {
                return Err(self.err(
                    format!("timeline[{}].{field}", t.index),
                    format!("{what} name {name:?} is already used by timeline[{first}]"),
                ));
            }
        }
        Ok(())
    }
}
