//! The recurring-service model of the fake Autotask (vendor entity pages): billing periods of a
//! contract, ContractServiceUnits per period, adding a service to a contract, and applying a
//! ContractServiceAdjustment (splitting the covering period at its effective date).

use chrono::{Datelike, Months, NaiveDate};

use super::{
    entities::Entity,
    records::{
        at_midnight, AtContract, AtContractService, AtContractServiceAdjustment,
        AtContractServiceUnit,
    },
    state::AtState,
    MAX_PERIODS, RECURRING_SERVICE,
};

impl AtState {
    fn period_months(&self, contract: &AtContract) -> u32 {
        match self
            .pick_label(
                Entity::Contracts,
                "contractPeriodType",
                contract.contract_period_type,
            )
            .map(|l| l.to_ascii_lowercase())
            .as_deref()
        {
            Some("quarterly") => 3,
            Some("semi-annual") | Some("semiannual") | Some("semi-annually") => 6,
            Some("yearly") | Some("annual") | Some("annually") => 12,
            _ => 1,
        }
    }

    /// Start and (inclusive) end date of period `k` of a contract, or `None` past its end.
    pub(super) fn period(&self, c: &AtContract, k: u32) -> Option<(NaiveDate, NaiveDate)> {
        let m = self.period_months(c);
        let s = c.start_date.date_naive();
        let end = c.end_date.date_naive();
        let ps = s.checked_add_months(Months::new(k * m))?;
        if ps > end {
            return None;
        }
        let pe = s
            .checked_add_months(Months::new((k + 1) * m))?
            .pred_opt()?
            .min(end);
        Some((ps, pe))
    }

    /// Index of the period containing `d` (clamped into the contract).
    pub(super) fn period_index(&self, c: &AtContract, d: NaiveDate) -> u32 {
        let m = self.period_months(c) as i64;
        let s = c.start_date.date_naive();
        let d = d.clamp(s, c.end_date.date_naive().max(s));
        let months = (d.year() as i64 - s.year() as i64) * 12 + d.month() as i64 - s.month() as i64;
        let mut k = (months / m).max(0) as u32;
        while k > 0 && self.period(c, k).is_none_or(|(ps, _)| ps > d) {
            k -= 1;
        }
        while self.period(c, k + 1).is_some_and(|(ps, _)| ps <= d) {
            k += 1;
        }
        k
    }

    /// Unit records of a contract service, by start date.
    pub(super) fn unit_records(&self, cs_id: i64) -> Vec<&AtContractServiceUnit> {
        let mut v: Vec<&AtContractServiceUnit> = self.units.children(cs_id).collect();
        v.sort_by_key(|u| u.start_date);
        v
    }

    /// Adds a unit record of `cs` at its unit price and cost.
    fn add_unit(&mut self, cs: &AtContractService, units: f64, start: NaiveDate, end: NaiveDate) {
        self.add_priced_unit(cs, units, (cs.unit_price, cs.unit_cost), start, end);
    }

    fn add_priced_unit(
        &mut self,
        cs: &AtContractService,
        units: f64,
        (price, cost): (f64, Option<f64>),
        start: NaiveDate,
        end: NaiveDate,
    ) {
        let id = self.units.insert(|id| AtContractServiceUnit {
            id,
            contract_id: cs.contract_id,
            contract_service_id: cs.id,
            service_id: cs.service_id,
            units,
            price,
            cost,
            start_date: at_midnight(start),
            end_date: at_midnight(end),
            approve_and_post_date: None,
        });
        self.units.link(cs.id, id);
    }

    /// Makes sure unit records cover every period from the one containing `from` through the
    /// one containing `to` (earlier periods get 0 units, later ones carry the last units).
    fn ensure_periods(&mut self, cs_id: i64, from: NaiveDate, to: NaiveDate) {
        let Some(cs) = self.contract_services.get(cs_id).cloned() else {
            return;
        };
        let Some(c) = self.contracts.get(cs.contract_id).cloned() else {
            return;
        };
        let (first, last) = {
            let recs = self.unit_records(cs_id);
            (
                recs.first().map(|u| (u.start_date.date_naive(), u.units)),
                recs.last().map(|u| (u.end_date.date_naive(), u.units)),
            )
        };
        let k_from = self.period_index(&c, from);
        let k_to = self.period_index(&c, to);
        match (first, last) {
            (Some((first_start, _)), Some((last_end, last_units))) => {
                // earlier periods
                let k_first = self.period_index(&c, first_start);
                if k_from < k_first {
                    if let Some((ps, _)) = self.period(&c, k_first) {
                        if first_start > ps {
                            // the first record starts mid-period: cover the gap
                            self.add_unit(&cs, 0.0, ps, first_start.pred_opt().unwrap_or(ps));
                        }
                    }
                    for k in k_from..k_first {
                        if let Some((ps, pe)) = self.period(&c, k) {
                            self.add_unit(&cs, 0.0, ps, pe);
                        }
                    }
                }
                // later periods
                let k_last = self.period_index(&c, last_end);
                for k in (k_last + 1)..=k_to {
                    if let Some((ps, pe)) = self.period(&c, k) {
                        if ps > last_end {
                            self.add_unit(&cs, last_units, ps, pe);
                        }
                    }
                }
            }
            _ => {
                for k in k_from..=k_to {
                    if let Some((ps, pe)) = self.period(&c, k) {
                        self.add_unit(&cs, 0.0, ps, pe);
                    }
                }
            }
        }
    }

    /// Adds a service to a contract with `units` from the current period on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_contract_service(
        &mut self,
        contract_id: i64,
        service_id: i64,
        unit_price: Option<f64>,
        unit_cost: Option<f64>,
        invoice_description: Option<String>,
        internal_description: Option<String>,
        units: f64,
        today: NaiveDate,
    ) -> Result<i64, String> {
        let c = self
            .contracts
            .get(contract_id)
            .cloned()
            .ok_or_else(|| format!("Contract {contract_id} does not exist."))?;
        let s = self
            .services
            .get(service_id)
            .cloned()
            .ok_or_else(|| format!("serviceID: Service {service_id} does not exist."))?;
        if self
            .contract_services
            .children(contract_id)
            .any(|x| x.service_id == service_id)
        {
            return Err(format!(
                "Service {service_id} is already associated with contract {contract_id}."
            ));
        }
        let id = self.contract_services.insert(|id| AtContractService {
            id,
            contract_id,
            service_id,
            unit_price: unit_price.unwrap_or(s.unit_price),
            unit_cost: unit_cost.or(s.unit_cost),
            invoice_description: invoice_description.or(s.invoice_description.clone()),
            internal_description,
        });
        self.contract_services.link(contract_id, id);
        let cs = self.contract_services.get(id).cloned().expect("stored");
        let k0 = self.period_index(&c, today);
        let mut k = k0;
        while let Some((ps, pe)) = self.period(&c, k) {
            if (k - k0) as usize >= MAX_PERIODS {
                break;
            }
            self.add_unit(&cs, units, ps, pe);
            k += 1;
        }
        Ok(id)
    }

    /// Applies a ContractServiceAdjustment; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn adjust(
        &mut self,
        contract_id: i64,
        cs_id: Option<i64>,
        service_id: Option<i64>,
        delta: f64,
        effective: NaiveDate,
        adjusted_price: Option<f64>,
        adjusted_cost: Option<f64>,
        allow_repeat: bool,
    ) -> Result<i64, String> {
        let c = self
            .contracts
            .get(contract_id)
            .cloned()
            .ok_or_else(|| format!("contractID: Contract {contract_id} does not exist."))?;
        if c.contract_type != RECURRING_SERVICE {
            return Err(format!(
                "Contract {contract_id} is not a Recurring Service contract."
            ));
        }
        if effective < c.start_date.date_naive() || effective > c.end_date.date_naive() {
            return Err(format!(
                "effectiveDate {effective} must be within the contract's start and end dates \
                 ({} – {}).",
                c.start_date.date_naive(),
                c.end_date.date_naive()
            ));
        }
        let cs_id = match (cs_id, service_id) {
            (Some(id), sid) => {
                let cs = self.contract_services.get(id).ok_or_else(|| {
                    format!("contractServiceID: ContractService {id} does not exist.")
                })?;
                if cs.contract_id != contract_id {
                    return Err(format!(
                        "contractServiceID: ContractService {id} does not belong to contract \
                         {contract_id}."
                    ));
                }
                if sid.is_some_and(|s| s != cs.service_id) {
                    return Err(format!(
                        "serviceID does not match the service of ContractService {id}."
                    ));
                }
                id
            }
            (None, Some(sid)) => {
                let existing = self
                    .contract_services
                    .children(contract_id)
                    .find(|x| x.service_id == sid)
                    .map(|x| x.id);
                match existing {
                    Some(id) => id,
                    // Vendor doc: the API creates the missing ContractService.
                    None => self.create_contract_service(
                        contract_id,
                        sid,
                        None,
                        None,
                        None,
                        None,
                        0.0,
                        effective,
                    )?,
                }
            }
            (None, None) => return Err("contractServiceID or serviceID is required.".into()),
        };
        self.ensure_periods(cs_id, effective, effective);
        let recs: Vec<AtContractServiceUnit> =
            self.unit_records(cs_id).into_iter().cloned().collect();
        let covering = recs.iter().find(|u| {
            u.start_date.date_naive() <= effective && effective <= u.end_date.date_naive()
        });
        let Some(covering) = covering.cloned() else {
            return Err(format!(
                "No service period covers effectiveDate {effective}."
            ));
        };
        let later: Vec<&AtContractServiceUnit> = recs
            .iter()
            .filter(|u| u.start_date.date_naive() > effective)
            .collect();
        if covering.units + delta < 0.0 || later.iter().any(|u| u.units + delta < 0.0) {
            return Err(
                "unitChange would make the number of units of the service negative.".into(),
            );
        }
        let set_prices = |u: &mut AtContractServiceUnit| {
            if let Some(p) = adjusted_price {
                u.price = p;
            }
            if let Some(c) = adjusted_cost {
                u.cost = Some(c);
            }
        };
        if covering.start_date.date_naive() == effective {
            self.units.modify(covering.id, |u| {
                u.units += delta;
                set_prices(u);
            });
        } else {
            let old_end = covering.end_date.date_naive();
            let new_end = effective.pred_opt().unwrap_or(effective);
            self.units
                .modify(covering.id, |u| u.end_date = at_midnight(new_end));
            let cs = self.contract_services.get(cs_id).cloned().expect("exists");
            let prices = (
                adjusted_price.unwrap_or(covering.price),
                adjusted_cost.or(covering.cost),
            );
            self.add_priced_unit(&cs, covering.units + delta, prices, effective, old_end);
        }
        for u in later {
            self.units.modify(u.id, |u| {
                u.units += delta;
                set_prices(u);
            });
        }
        let cs = self.contract_services.get(cs_id).cloned().expect("exists");
        Ok(self.adjustments.insert(|id| AtContractServiceAdjustment {
            id,
            contract_id,
            contract_service_id: Some(cs_id),
            service_id: Some(cs.service_id),
            unit_change: delta,
            effective_date: at_midnight(effective),
            adjusted_unit_price: adjusted_price,
            adjusted_unit_cost: adjusted_cost,
            allow_repeat_service: allow_repeat,
        }))
    }

    /// Units of a contract service on `day` (the covering record; before the first → the
    /// first's, after the last → the last's; 0 when there are none).
    pub(super) fn units_on(&self, cs_id: i64, day: NaiveDate) -> f64 {
        let recs = self.unit_records(cs_id);
        if let Some(u) = recs
            .iter()
            .rev()
            .find(|u| u.start_date.date_naive() <= day && day <= u.end_date.date_naive())
        {
            return u.units;
        }
        match (recs.first(), recs.last()) {
            (Some(f), _) if day < f.start_date.date_naive() => f.units,
            (_, Some(l)) => l.units,
            _ => 0.0,
        }
    }
}
