//! State of the fake ConnectWise Manage: one [`Instance`] per login company, each entity in a
//! [`Table`], and [`Res`], the list resource a request targets.

use std::{collections::BTreeMap, ops::Bound};

use serde_json::{json, Value};

use super::{
    records::{
        CwAddition, CwAgreement, CwCatalogItem, CwCompany, CwCompanyRef, CwContact, CwRef, CwTicket,
    },
    CODEBASE,
};
use crate::common::{JsonRows, Table};

/// One Manage "site tenant" (a login company with its API member keys).
pub(super) struct Instance {
    pub(super) login_company_id: String,
    pub(super) public_key: String,
    pub(super) private_key: String,
    pub(super) codebase: String,
    pub(super) companies: Table<CwCompany>,
    pub(super) contacts: Table<CwContact>,
    pub(super) agreements: Table<CwAgreement>,
    /// Children of their agreement.
    pub(super) additions: Table<CwAddition>,
    pub(super) products: Table<CwCatalogItem>,
    pub(super) callbacks: Table<Value>,
    pub(super) tickets: Table<CwTicket>,
    pub(super) statuses: BTreeMap<String, CwRef>,
    pub(super) types: BTreeMap<String, CwRef>,
    pub(super) next_comm_id: i64,
}

fn named_table(pairs: &[(&str, i64)]) -> BTreeMap<String, CwRef> {
    pairs
        .iter()
        .map(|(n, id)| {
            (
                n.to_lowercase(),
                CwRef {
                    id: *id,
                    name: n.to_string(),
                },
            )
        })
        .collect()
}

impl Instance {
    pub(super) fn new(login_company_id: &str, public_key: &str, private_key: &str) -> Self {
        Instance {
            login_company_id: login_company_id.to_string(),
            public_key: public_key.to_string(),
            private_key: private_key.to_string(),
            codebase: CODEBASE.to_string(),
            // Distinct id ranges per entity make id mix-ups visible.
            companies: Table::new(19_300),
            contacts: Table::new(7_000),
            agreements: Table::new(500),
            additions: Table::new(3_000),
            products: Table::new(100),
            callbacks: Table::new(1),
            tickets: Table::new(40_000),
            statuses: named_table(&[("Active", 1), ("Inactive", 2), ("Not-Approved", 3)]),
            types: named_table(&[
                ("Client", 1),
                ("Prospect", 2),
                ("Partner", 3),
                ("Vendor", 4),
            ]),
            next_comm_id: 1,
        }
    }

    pub(super) fn lookup(table: &mut BTreeMap<String, CwRef>, name: &str) -> CwRef {
        let next = table.values().map(|r| r.id).max().unwrap_or(0).max(9) + 1;
        table
            .entry(name.to_lowercase())
            .or_insert_with(|| CwRef {
                id: next,
                name: name.to_string(),
            })
            .clone()
    }

    pub(super) fn company_ref(&self, id: i64) -> Option<CwCompanyRef> {
        self.companies.get(id).map(|c| CwCompanyRef {
            id: c.id,
            identifier: c.identifier.clone(),
            name: c.name.clone(),
        })
    }

    /// The table behind a resource (for additions: all of them; [`Instance::rows_from`] and
    /// [`Instance::row`] scope them to the agreement).
    fn table(&self, res: Res) -> &dyn JsonRows {
        match res {
            Res::Companies => &self.companies,
            Res::Contacts => &self.contacts,
            Res::Agreements => &self.agreements,
            Res::Additions(_) => &self.additions,
            Res::Catalog => &self.products,
            Res::Callbacks => &self.callbacks,
            Res::Tickets => &self.tickets,
        }
    }

    /// `(id, JSON)` of the resource's records with ids above `after`, by id.
    pub(super) fn rows_from(
        &self,
        res: Res,
        after: i64,
    ) -> Box<dyn DoubleEndedIterator<Item = (i64, &Value)> + '_> {
        let start = after.saturating_add(1);
        match res {
            Res::Additions(a) => Box::new(
                self.additions
                    .child_ids_from(a, start)
                    .filter_map(move |id| self.additions.json(id).map(|v| (id, v))),
            ),
            r => self
                .table(r)
                .json_range((Bound::Included(start), Bound::Unbounded)),
        }
    }

    pub(super) fn row(&self, res: Res, id: i64) -> Option<&Value> {
        match res {
            Res::Additions(a) if !self.additions.is_child(a, id) => None,
            r => self.table(r).json(id),
        }
    }
}

#[derive(Default)]
pub(super) struct CwState {
    /// By lower-cased login company id.
    pub(super) instances: BTreeMap<String, Instance>,
    /// Whether an addition write (API or test control) also stamps its agreement's
    /// `_info.lastUpdated` (off by default: Manage does not promise it, R-PROV-8).
    pub(super) addition_touches_agreement: bool,
}

/// Which list resource a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Res {
    Companies,
    Contacts,
    Agreements,
    Additions(i64),
    Catalog,
    Callbacks,
    Tickets,
}

impl Res {
    pub(super) fn label(self) -> &'static str {
        match self {
            Res::Companies => "Company",
            Res::Contacts => "Contact",
            Res::Agreements => "Agreement",
            Res::Additions(_) => "Addition",
            Res::Catalog => "CatalogItem",
            Res::Callbacks => "Callback",
            Res::Tickets => "Ticket",
        }
    }
    /// Top-level field names (for validating `conditions` / `orderBy`).
    pub(super) fn fields(self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .template()
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.push("lastUpdated".into());
        keys
    }

    /// Top-level fields that hold collections (`types`, `communicationItems`): what
    /// `childConditions` filters on, and what `conditions` may not reference.
    pub(super) fn collection_fields(self) -> Vec<String> {
        self.template()
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| v.is_array())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A default record of the resource (its JSON shape).
    fn template(self) -> Value {
        match self {
            Res::Companies => serde_json::to_value(CwCompany::default()),
            Res::Contacts => serde_json::to_value(CwContact::default()),
            Res::Agreements => serde_json::to_value(CwAgreement::default()),
            Res::Additions(_) => serde_json::to_value(CwAddition::default()),
            Res::Catalog => serde_json::to_value(CwCatalogItem::default()),
            Res::Callbacks => Ok(callback_template()),
            Res::Tickets => serde_json::to_value(CwTicket::default()),
        }
        .unwrap_or(Value::Null)
    }
}

fn callback_template() -> Value {
    json!({
        "id": 0, "description": "", "url": "", "objectId": 0, "type": "", "level": "",
        "memberId": 0, "payloadVersion": null, "inactiveFlag": false,
        "isSoapCallbackFlag": false, "isSelfSuppressedFlag": false, "connectWiseID": "",
        "_info": {}
    })
}
