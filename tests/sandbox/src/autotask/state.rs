//! State of the fake Autotask (one database): API users and integration codes, the request
//! threshold window, picklists, UDF definitions, and every entity in a [`Table`]. The
//! recurring-service model (periods, units, adjustments) is in `units.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};

use super::{
    entities::Entity,
    records::{
        AtBillingCode, AtCompany, AtContact, AtContract, AtContractService,
        AtContractServiceAdjustment, AtContractServiceUnit, AtService, AtTicket, AtUdf,
    },
    DEFAULT_BILLING_CODE_ID, DEFAULT_THRESHOLD, RECURRING_SERVICE, WINDOW_MINUTES,
};
use crate::common::{JsonRows, Table};

#[derive(Debug, Clone)]
pub(super) struct PickVal {
    pub(super) value: i64,
    pub(super) label: String,
    pub(super) is_active: bool,
}

#[derive(Debug, Clone)]
pub(super) struct UdfDef {
    pub(super) name: String,
    /// `(value, label)` for picklist UDFs.
    pub(super) picklist: Option<Vec<(String, String)>>,
}

pub(super) struct ApiUser {
    pub(super) username: String,
    pub(super) secret: String,
    pub(super) integration_code: Option<String>,
    pub(super) api_access: bool,
}

pub(super) struct AtState {
    /// By lower-cased username.
    pub(super) users: BTreeMap<String, ApiUser>,
    pub(super) codes: BTreeSet<String>,
    pub(super) threshold: u64,
    pub(super) window: VecDeque<DateTime<Utc>>,
    pub(super) picklists: BTreeMap<(Entity, &'static str), Vec<PickVal>>,
    pub(super) udfs: BTreeMap<Entity, Vec<UdfDef>>,
    pub(super) companies: Table<AtCompany>,
    pub(super) contacts: Table<AtContact>,
    pub(super) tickets: Table<AtTicket>,
    pub(super) contracts: Table<AtContract>,
    /// Children of their contract.
    pub(super) contract_services: Table<AtContractService>,
    /// Children of their contract service.
    pub(super) units: Table<AtContractServiceUnit>,
    pub(super) adjustments: Table<AtContractServiceAdjustment>,
    pub(super) services: Table<AtService>,
    pub(super) billing_codes: Table<AtBillingCode>,
}

fn picks(pairs: &[(i64, &str)]) -> Vec<PickVal> {
    pairs
        .iter()
        .map(|(v, l)| PickVal {
            value: *v,
            label: l.to_string(),
            is_active: true,
        })
        .collect()
}

const PERIOD_TYPES: &[(i64, &str)] = &[
    (1, "Monthly"),
    (2, "Quarterly"),
    (3, "Semi-Annual"),
    (4, "Yearly"),
];

impl AtState {
    pub(super) fn new() -> Self {
        let mut picklists = BTreeMap::new();
        picklists.insert(
            (Entity::Companies, "companyType"),
            picks(&[
                (1, "Customer"),
                (2, "Lead"),
                (3, "Prospect"),
                (4, "Dead"),
                (6, "Cancellation"),
                (7, "Vendor"),
                (8, "Partner"),
            ]),
        );
        picklists.insert(
            (Entity::Contracts, "status"),
            picks(&[(0, "Inactive"), (1, "Active")]),
        );
        picklists.insert(
            (Entity::Contracts, "contractType"),
            picks(&[
                (1, "Time and Materials"),
                (3, "Fixed Price"),
                (4, "Block Hours"),
                (6, "Retainer"),
                (RECURRING_SERVICE, "Recurring Service"),
                (8, "Per Ticket"),
            ]),
        );
        picklists.insert(
            (Entity::Contracts, "contractCategory"),
            picks(&[(1, "Standard"), (2, "Managed Services")]),
        );
        picklists.insert(
            (Entity::Contracts, "contractPeriodType"),
            picks(PERIOD_TYPES),
        );
        picklists.insert((Entity::Services, "periodType"), picks(PERIOD_TYPES));
        picklists.insert(
            (Entity::Tickets, "status"),
            picks(&[(1, "New"), (5, "Complete"), (8, "In Progress")]),
        );
        picklists.insert(
            (Entity::Tickets, "priority"),
            picks(&[(1, "High"), (2, "Medium"), (3, "Low"), (4, "Critical")]),
        );
        picklists.insert(
            (Entity::Tickets, "queueID"),
            picks(&[(5, "Client Portal"), (8, "Level I Support")]),
        );
        picklists.insert(
            (Entity::BillingCodes, "useType"),
            picks(&[
                (1, "Work Type"),
                (2, "Recurring Contract Service"),
                (3, "Material"),
            ]),
        );
        let mut udfs = BTreeMap::new();
        udfs.insert(
            Entity::Contracts,
            vec![UdfDef {
                name: "PAYG".into(),
                picklist: None,
            }],
        );
        AtState {
            users: BTreeMap::new(),
            codes: BTreeSet::new(),
            threshold: DEFAULT_THRESHOLD,
            window: VecDeque::new(),
            picklists,
            udfs,
            companies: Table::new(174),
            contacts: Table::new(30_682_000),
            tickets: Table::new(9_100_000),
            contracts: Table::new(29_684_000),
            contract_services: Table::new(51_000_000),
            units: Table::new(72_000_000),
            adjustments: Table::new(83_000_000),
            services: Table::new(2_900_000),
            billing_codes: {
                let mut t = Table::new(DEFAULT_BILLING_CODE_ID);
                t.insert(|id| AtBillingCode {
                    id,
                    name: "Recurring Services".into(),
                    description: Some("Default allocation code for services".into()),
                    is_active: true,
                    use_type: 2,
                });
                t
            },
        }
    }

    // --- threshold ---------------------------------------------------------------------------

    fn prune(&mut self, now: DateTime<Utc>) {
        let cutoff = now - Duration::minutes(WINDOW_MINUTES);
        while self.window.front().is_some_and(|t| *t <= cutoff) {
            self.window.pop_front();
        }
    }

    pub(super) fn used(&mut self, now: DateTime<Utc>) -> u64 {
        self.prune(now);
        self.window.len() as u64
    }

    // --- picklists & UDFs --------------------------------------------------------------------

    pub(super) fn picklist(&self, e: Entity, field: &str) -> Option<&Vec<PickVal>> {
        self.picklists
            .iter()
            .find(|((pe, pf), _)| *pe == e && pf.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
    }

    pub(super) fn pick_valid(&self, e: Entity, field: &str, value: i64) -> bool {
        self.picklist(e, field)
            .is_some_and(|l| l.iter().any(|p| p.value == value && p.is_active))
    }

    pub(super) fn pick_label(&self, e: Entity, field: &str, value: i64) -> Option<String> {
        self.picklist(e, field)?
            .iter()
            .find(|p| p.value == value)
            .map(|p| p.label.clone())
    }

    /// The value of a label, adding it to the picklist when unknown.
    pub(super) fn pick_lookup(&mut self, e: Entity, field: &'static str, label: &str) -> i64 {
        let list = self.picklists.entry((e, field)).or_default();
        if let Some(p) = list.iter().find(|p| p.label.eq_ignore_ascii_case(label)) {
            return p.value;
        }
        let value = list.iter().map(|p| p.value).max().unwrap_or(0).max(99) + 1;
        list.push(PickVal {
            value,
            label: label.to_string(),
            is_active: true,
        });
        value
    }

    pub(super) fn udf_defs(&self, e: Entity) -> &[UdfDef] {
        self.udfs.get(&e).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(super) fn udf_def(&self, e: Entity, name: &str) -> Option<&UdfDef> {
        self.udf_defs(e)
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// Runs `f` on the UDF list of every record of `e` (entities without UDFs have none).
    fn edit_udfs(&mut self, e: Entity, f: impl Fn(&mut Vec<AtUdf>)) {
        match e {
            Entity::Companies => self.companies.modify_all(|r| f(&mut r.user_defined_fields)),
            Entity::Contacts => self.contacts.modify_all(|r| f(&mut r.user_defined_fields)),
            Entity::Contracts => self.contracts.modify_all(|r| f(&mut r.user_defined_fields)),
            Entity::Services => self.services.modify_all(|r| f(&mut r.user_defined_fields)),
            _ => {}
        }
    }

    /// Defines a UDF (idempotent) and adds it (value null) to every record of the entity.
    pub(super) fn define_udf(&mut self, e: Entity, def: UdfDef) {
        let list = self.udfs.entry(e).or_default();
        if let Some(existing) = list
            .iter_mut()
            .find(|u| u.name.eq_ignore_ascii_case(&def.name))
        {
            existing.picklist = def.picklist;
            return;
        }
        let name = def.name.clone();
        list.push(def);
        self.edit_udfs(e, |udfs| {
            udfs.push(AtUdf {
                name: name.clone(),
                value: None,
            })
        });
    }

    pub(super) fn remove_udf(&mut self, e: Entity, name: &str) {
        if let Some(list) = self.udfs.get_mut(&e) {
            list.retain(|u| !u.name.eq_ignore_ascii_case(name));
        }
        self.edit_udfs(e, |udfs| {
            udfs.retain(|u| !u.name.eq_ignore_ascii_case(name))
        });
    }

    pub(super) fn blank_udfs(&self, e: Entity) -> Vec<AtUdf> {
        self.udf_defs(e)
            .iter()
            .map(|u| AtUdf {
                name: u.name.clone(),
                value: None,
            })
            .collect()
    }

    // --- rows ----------------------------------------------------------------------------------

    /// The table of an entity, as JSON rows.
    pub(super) fn rows(&self, e: Entity) -> &dyn JsonRows {
        match e {
            Entity::Companies => &self.companies,
            Entity::Contacts => &self.contacts,
            Entity::Contracts => &self.contracts,
            Entity::ContractServices => &self.contract_services,
            Entity::ContractServiceUnits => &self.units,
            Entity::ContractServiceAdjustments => &self.adjustments,
            Entity::Services => &self.services,
            Entity::BillingCodes => &self.billing_codes,
            Entity::Tickets => &self.tickets,
        }
    }
}
