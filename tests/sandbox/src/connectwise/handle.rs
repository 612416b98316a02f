//! Test-control methods of [`ConnectWiseFake`]: instances, companies, products, agreements,
//! additions, and reading back what the API wrote.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    records::{
        CwAddition, CwAgreement, CwCatalogItem, CwCommunicationItem, CwCompany, CwCompanyRef,
        CwContact, CwInfo, CwProductRef, CwRef, NewAddition, NewAgreement, NewCompany,
    },
    state::Instance,
    ConnectWiseFake,
};
use crate::common::{lock, whole_seconds};

impl ConnectWiseFake {
    fn with<R>(&self, inst: &str, f: impl FnOnce(&mut Instance, DateTime<Utc>) -> R) -> R {
        self.with_switch(inst, |i, now, _| f(i, now))
    }

    /// [`Self::with`], also given whether addition writes touch their agreement.
    fn with_switch<R>(
        &self,
        inst: &str,
        f: impl FnOnce(&mut Instance, DateTime<Utc>, bool) -> R,
    ) -> R {
        let now = whole_seconds(self.inner.common.clock.now());
        let mut st = lock(&self.inner.state);
        let touch = st.addition_touches_agreement;
        let i = st
            .instances
            .get_mut(&inst.to_lowercase())
            .unwrap_or_else(|| panic!("psa-sandbox: unknown ConnectWise instance {inst:?}"));
        f(i, now, touch)
    }

    /// Whether writing an addition (POST/PUT/PATCH/DELETE over the API, or
    /// [`Self::add_addition`] / [`Self::update_addition`] / [`Self::remove_addition`]) also
    /// stamps its agreement's `_info.lastUpdated`. Off by default: an addition edit leaves its
    /// agreement's change time alone, so only a re-read of the additions sees it (R-PROV-8).
    /// Also `POST /_sandbox/connectwise/addition-edits {"touch_agreement": bool}`.
    pub fn set_addition_touches_agreement(&self, on: bool) {
        lock(&self.inner.state).addition_touches_agreement = on;
    }

    pub fn addition_touches_agreement(&self) -> bool {
        lock(&self.inner.state).addition_touches_agreement
    }

    /// Registers a PSA site tenant (login company) with its API member keys. Codebase is
    /// `v2025_1/`. Re-adding an existing company id replaces its keys and keeps its data.
    pub fn add_instance(&self, login_company_id: &str, public_key: &str, private_key: &str) {
        let mut st = lock(&self.inner.state);
        let key = login_company_id.to_lowercase();
        match st.instances.get_mut(&key) {
            Some(i) => {
                i.public_key = public_key.to_string();
                i.private_key = private_key.to_string();
            }
            None => {
                st.instances.insert(
                    key,
                    Instance::new(login_company_id, public_key, private_key),
                );
            }
        }
    }

    /// Adds a company (and, with `primary_contact`, a contact set as its `defaultContact`).
    pub fn add_company(&self, inst: &str, c: NewCompany) -> i64 {
        self.with(inst, |i, now| {
            let id = i.companies.alloc();
            let status = Instance::lookup(
                &mut i.statuses,
                c.status_name.as_deref().unwrap_or("Active"),
            );
            let types = c
                .type_name
                .as_deref()
                .map(|t| vec![Instance::lookup(&mut i.types, t)])
                .unwrap_or_default();
            let company_ref = CwCompanyRef {
                id,
                identifier: c.identifier.clone(),
                name: c.name.clone(),
            };
            let default_contact = c.primary_contact.map(|(first, last, email)| {
                let comm_id = i.next_comm_id;
                let name = format!("{first} {last}").trim().to_string();
                let cid = i.contacts.insert(|cid| CwContact {
                    id: cid,
                    first_name: first,
                    last_name: last,
                    company: company_ref.clone(),
                    inactive_flag: false,
                    default_flag: true,
                    communication_items: vec![CwCommunicationItem {
                        id: comm_id,
                        item_type: CwRef {
                            id: 1,
                            name: "Email".into(),
                        },
                        value: email,
                        default_flag: true,
                        communication_type: "Email".into(),
                    }],
                    info: CwInfo::at(now),
                });
                i.next_comm_id += 1;
                CwRef { id: cid, name }
            });
            i.companies.put(
                id,
                CwCompany {
                    id,
                    identifier: c.identifier,
                    name: c.name,
                    status,
                    types,
                    deleted_flag: false,
                    default_contact,
                    info: CwInfo::at(now),
                },
            );
            id
        })
    }

    /// Changes a company (as if edited in the UI); bumps `_info.lastUpdated` and refreshes the
    /// company references held by its agreements and contacts.
    pub fn update_company(&self, inst: &str, id: i64, f: impl FnOnce(&mut CwCompany)) {
        self.with(inst, |i, now| {
            let ok = i.companies.update(id, now, f);
            assert!(ok, "psa-sandbox: unknown company {id}");
            let r = i.company_ref(id).expect("exists");
            i.agreements
                .modify_where(|a| a.company.id == id, |a| a.company = r.clone());
            i.contacts
                .modify_where(|c| c.company.id == id, |c| c.company = r.clone());
        })
    }

    /// Adds a procurement catalog item (product).
    pub fn add_product(&self, inst: &str, identifier: &str, description: &str) -> i64 {
        self.with(inst, |i, now| {
            i.products.insert(|id| CwCatalogItem {
                id,
                identifier: identifier.to_string(),
                description: description.to_string(),
                customer_description: description.to_string(),
                subcategory: CwRef {
                    id: 1,
                    name: "Cloud Services".into(),
                },
                item_type: CwRef {
                    id: 1,
                    name: "Service".into(),
                },
                inactive_flag: false,
                product_class: "Agreement".into(),
                recurring_flag: true,
                info: CwInfo::at(now),
            })
        })
    }

    /// Adds an agreement (type "Managed Services"; contact = the company's default contact).
    /// `agreementStatus` is `Cancelled` when cancelled, `Expired` when `end_date` is in the
    /// past (fake clock) without `no_ending_date_flag`, else `Active`.
    pub fn add_agreement(&self, inst: &str, a: NewAgreement) -> i64 {
        self.with(inst, |i, now| {
            let company = i
                .company_ref(a.company_id)
                .unwrap_or_else(|| panic!("psa-sandbox: unknown company {}", a.company_id));
            let contact = i
                .companies
                .get(a.company_id)
                .and_then(|c| c.default_contact.clone());
            let status = super::entity_writes::agreement_status(
                a.cancelled_flag,
                a.no_ending_date_flag,
                a.end_date,
                now,
            );
            i.agreements.insert(|id| CwAgreement {
                id,
                name: a.name,
                agreement_type: CwRef {
                    id: 1,
                    name: "Managed Services".into(),
                },
                company,
                contact,
                start_date: a.start_date.map(whole_seconds),
                end_date: a.end_date.map(whole_seconds),
                no_ending_date_flag: a.no_ending_date_flag,
                cancelled_flag: a.cancelled_flag,
                date_cancelled: a.date_cancelled.map(whole_seconds),
                agreement_status: status.into(),
                info: CwInfo::at(now),
            })
        })
    }

    /// Changes an agreement; bumps `_info.lastUpdated`. If the closure sets `cancelled_flag`,
    /// `agreement_status` becomes `Cancelled` (other status changes are up to the closure).
    pub fn update_agreement(&self, inst: &str, id: i64, f: impl FnOnce(&mut CwAgreement)) {
        self.with(inst, |i, now| {
            let ok = i.agreements.update(id, now, |a| {
                f(a);
                if a.cancelled_flag {
                    a.agreement_status = "Cancelled".into();
                }
            });
            assert!(ok, "psa-sandbox: unknown agreement {id}");
        })
    }

    /// Adds an addition (billCustomer "Billable", unitPrice 0, description = product's).
    pub fn add_addition(&self, inst: &str, agreement_id: i64, a: NewAddition) -> i64 {
        self.with_switch(inst, |i, now, touch| {
            assert!(
                i.agreements.get(agreement_id).is_some(),
                "psa-sandbox: unknown agreement {agreement_id}"
            );
            let p = i
                .products
                .get(a.product_id)
                .unwrap_or_else(|| panic!("psa-sandbox: unknown product {}", a.product_id))
                .clone();
            let id = i.additions.insert(|id| CwAddition {
                id,
                product: CwProductRef {
                    id: p.id,
                    identifier: p.identifier,
                },
                quantity: a.quantity,
                less_included: a.less_included,
                unit_price: 0.0,
                bill_customer: "Billable".into(),
                effective_date: a.effective_date.map(whole_seconds),
                cancelled_date: a.cancelled_date.map(whole_seconds),
                agreement_id,
                description: p.description,
                invoice_description: None,
                info: CwInfo::at(now),
            });
            i.additions.link(agreement_id, id);
            if touch {
                i.agreements.update(agreement_id, now, |_| {});
            }
            id
        })
    }

    /// Changes an addition; bumps its `_info.lastUpdated` (and its agreement's when
    /// [`Self::set_addition_touches_agreement`] is on).
    pub fn update_addition(
        &self,
        inst: &str,
        agreement_id: i64,
        id: i64,
        f: impl FnOnce(&mut CwAddition),
    ) {
        self.with_switch(inst, |i, now, touch| {
            assert!(
                i.additions.is_child(agreement_id, id),
                "psa-sandbox: unknown addition {agreement_id}/{id}"
            );
            i.additions.update(id, now, f);
            if touch {
                i.agreements.update(agreement_id, now, |_| {});
            }
        })
    }

    /// Deletes an addition (no-op if absent).
    pub fn remove_addition(&self, inst: &str, agreement_id: i64, id: i64) {
        self.with_switch(inst, |i, now, touch| {
            if i.additions.remove_child(agreement_id, id) && touch {
                i.agreements.update(agreement_id, now, |_| {});
            }
        })
    }

    /// Current state of an addition.
    pub fn addition(&self, inst: &str, agreement_id: i64, id: i64) -> Option<CwAddition> {
        self.with(inst, |i, _| {
            i.additions
                .get(id)
                .filter(|_| i.additions.is_child(agreement_id, id))
                .cloned()
        })
    }

    /// All additions of an agreement, by id.
    pub fn additions(&self, inst: &str, agreement_id: i64) -> Vec<CwAddition> {
        self.with(inst, |i, _| {
            i.additions.children(agreement_id).cloned().collect()
        })
    }

    /// Current state of a company.
    pub fn company(&self, inst: &str, id: i64) -> Option<CwCompany> {
        self.with(inst, |i, _| i.companies.get(id).cloned())
    }

    /// Current state of an agreement.
    pub fn agreement(&self, inst: &str, id: i64) -> Option<CwAgreement> {
        self.with(inst, |i, _| i.agreements.get(id).cloned())
    }

    /// Registered callbacks (as the API returns them).
    pub fn callbacks(&self, inst: &str) -> Vec<Value> {
        self.with(inst, |i, _| i.callbacks.records().cloned().collect())
    }
}
