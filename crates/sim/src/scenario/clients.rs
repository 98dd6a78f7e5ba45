//! `[[clients]]`: the client populations flows come from.

use super::raw::RawClient;
use super::values::Validator;
use super::{ClientPlace, ClientSpec, ScenarioError};
use inregion_model::{CountryCode, GeoPoint, Iata};

impl Validator<'_> {
    /// `[[clients]]`: at least one population, each at one place with a positive weight.
    pub(super) fn clients(&self, raw: &[RawClient]) -> Result<Vec<ClientSpec>, ScenarioError> {
        let clients = raw
            .iter()
            .enumerate()
            .map(|(i, c)| self.client(format!("clients[{i}]"), c))
            .collect::<Result<Vec<_>, _>>()?;
        if clients.is_empty() {
            return Err(self.err("clients", "give at least one [[clients]] population"));
        }
        Ok(clients)
    }

    /// One population at `key`; its name defaults to the place's.
    fn client(&self, key: String, c: &RawClient) -> Result<ClientSpec, ScenarioError> {
        let (name, place) = self.client_place(&key, c)?;
        let weight = self.weight(&key, c.weight)?;
        Ok(ClientSpec {
            name: c.name.clone().unwrap_or(name),
            place,
            weight,
            key,
        })
    }

    /// The one place a population gives (`country`, `city`, `iata` or `at`), with its
    /// display name.
    fn client_place(
        &self,
        key: &str,
        c: &RawClient,
    ) -> Result<(String, ClientPlace), ScenarioError> {
        let given = [&c.country, &c.city, &c.iata, &c.at]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            return Err(self.err(key, "give exactly one of country, city, iata or at"));
        }
        Ok(if let Some(cc) = &c.country {
            let code = CountryCode::parse(&cc.to_ascii_uppercase())
                .map_err(|e| self.err(format!("{key}.country"), e.to_string()))?;
            (code.to_string(), ClientPlace::Country(code))
        } else if let Some(city) = &c.city {
            (city.clone(), ClientPlace::City(city.clone()))
        } else if let Some(code) = &c.iata {
            let code = Iata::parse(&code.to_ascii_uppercase())
                .map_err(|e| self.err(format!("{key}.iata"), e.to_string()))?;
            (code.to_string(), ClientPlace::Iata(code))
        } else {
            let text = c.at.as_deref().unwrap_or_default();
            let p: GeoPoint = text
                .parse()
                .map_err(|m: String| self.err(format!("{key}.at"), m))?;
            (text.to_owned(), ClientPlace::Point(p))
        })
    }
}
