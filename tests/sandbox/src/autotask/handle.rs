//! Test-control methods of [`AutotaskFake`]: API users, the threshold, UDFs, companies,
//! services, contracts, contract services and their units, and reading back what the API
//! wrote.

use chrono::{DateTime, Datelike, Months, Utc};
use serde_json::Value;

use super::{
    entities::Entity,
    records::{
        at_midnight, AtBillingCode, AtCompany, AtContact, AtContract, AtContractServiceAdjustment,
        AtContractServiceUnit, AtNewCompany, AtNewContract, AtService,
    },
    state::{ApiUser, AtState, UdfDef},
    AutotaskFake, DEFAULT_BILLING_CODE_ID, DEFAULT_OWNER_RESOURCE_ID, RECURRING_SERVICE,
};
use crate::common::{lock, num_json, whole_millis};

impl AutotaskFake {
    fn with<R>(&self, f: impl FnOnce(&mut AtState, DateTime<Utc>) -> R) -> R {
        let now = whole_millis(self.inner.common.clock.now());
        let mut st = lock(&self.inner.state);
        f(&mut st, now)
    }

    /// Registers an API-only user bound to `integration_code` (the code is registered too).
    /// Re-adding a username replaces its secret and code.
    pub fn add_api_user(&self, username: &str, secret: &str, integration_code: &str) {
        self.with(|st, _| {
            st.codes.insert(integration_code.to_string());
            st.users.insert(
                username.to_lowercase(),
                ApiUser {
                    username: username.to_string(),
                    secret: secret.to_string(),
                    integration_code: Some(integration_code.to_string()),
                    api_access: true,
                },
            );
        })
    }

    /// Registers a (non API-only) user: zone discovery finds it, API calls get 403.
    pub fn add_user_without_api_access(&self, username: &str, secret: &str) {
        self.with(|st, _| {
            st.users.insert(
                username.to_lowercase(),
                ApiUser {
                    username: username.to_string(),
                    secret: secret.to_string(),
                    integration_code: None,
                    api_access: false,
                },
            );
        })
    }

    /// Sets `externalRequestThreshold` (requests per rolling 60 minutes).
    pub fn set_threshold(&self, per_hour: u64) {
        self.with(|st, _| st.threshold = per_hour)
    }

    /// Requests counted in the current 60-minute window (fake clock).
    pub fn threshold_used(&self) -> u64 {
        self.with(|st, now| st.used(now))
    }

    /// Defines a text UDF on Contracts (idempotent; existing contracts get it with null).
    pub fn define_contract_udf(&self, name: &str) {
        self.with(|st, _| {
            st.define_udf(
                Entity::Contracts,
                UdfDef {
                    name: name.to_string(),
                    picklist: None,
                },
            )
        })
    }

    /// Defines a picklist UDF on Contracts; values are `"1"`, `"2"`, … in label order.
    pub fn define_contract_picklist_udf(&self, name: &str, labels: &[&str]) {
        self.with(|st, _| {
            st.define_udf(
                Entity::Contracts,
                UdfDef {
                    name: name.to_string(),
                    picklist: Some(
                        labels
                            .iter()
                            .enumerate()
                            .map(|(i, l)| ((i + 1).to_string(), l.to_string()))
                            .collect(),
                    ),
                },
            )
        })
    }

    /// Removes a Contracts UDF (e.g. the default `PAYG`) from the definitions and records.
    pub fn remove_contract_udf(&self, name: &str) {
        self.with(|st, _| st.remove_udf(Entity::Contracts, name))
    }

    /// Adds a company (active; companyType label, default "Customer"), and with
    /// `primary_contact` a Contacts record with `primaryContact: true`.
    pub fn add_company(&self, c: AtNewCompany) -> i64 {
        self.with(|st, now| {
            let company_type = st.pick_lookup(
                Entity::Companies,
                "companyType",
                c.company_type.as_deref().unwrap_or("Customer"),
            );
            let udfs = st.blank_udfs(Entity::Companies);
            let id = st.companies.insert(|id| AtCompany {
                id,
                company_name: c.name,
                company_number: None,
                company_type,
                is_active: true,
                parent_company_id: None,
                owner_resource_id: DEFAULT_OWNER_RESOURCE_ID,
                phone: None,
                create_date: now,
                last_tracked_modified_date_time: now,
                user_defined_fields: udfs,
            });
            if let Some((first, last, email)) = c.primary_contact {
                let udfs = st.blank_udfs(Entity::Contacts);
                st.contacts.insert(|cid| AtContact {
                    id: cid,
                    company_id: id,
                    first_name: first,
                    last_name: last,
                    email_address: Some(email),
                    is_active: 1,
                    primary_contact: true,
                    last_modified_date: now,
                    user_defined_fields: udfs,
                });
            }
            id
        })
    }

    /// Changes a company; bumps `lastTrackedModifiedDateTime`.
    pub fn update_company(&self, id: i64, f: impl FnOnce(&mut AtCompany)) {
        self.with(|st, now| {
            let ok = st.companies.update(id, now, f);
            assert!(ok, "psa-sandbox: unknown Autotask company {id}");
        })
    }

    /// Current state of a company.
    pub fn company(&self, id: i64) -> Option<AtCompany> {
        self.with(|st, _| st.companies.get(id).cloned())
    }

    /// Adds an active service (unitPrice 0) with a periodType label (e.g. "Monthly").
    pub fn add_service(&self, name: &str, period_type: &str) -> i64 {
        self.with(|st, now| {
            let period_type = st.pick_lookup(Entity::Services, "periodType", period_type);
            let udfs = st.blank_udfs(Entity::Services);
            st.services.insert(|id| AtService {
                id,
                name: name.to_string(),
                description: None,
                invoice_description: None,
                unit_price: 0.0,
                unit_cost: None,
                period_type,
                billing_code_id: Some(DEFAULT_BILLING_CODE_ID),
                is_active: true,
                sku: None,
                external_id: None,
                last_modified_date: now,
                user_defined_fields: udfs,
            })
        })
    }

    /// Adds an active allocation code (billing code of use type Recurring Contract Service).
    pub fn add_billing_code(&self, name: &str) -> i64 {
        self.with(|st, _| {
            st.billing_codes.insert(|id| AtBillingCode {
                id,
                name: name.to_string(),
                description: None,
                is_active: true,
                use_type: 2,
            })
        })
    }

    /// The services with this name (any case).
    pub fn services_named(&self, name: &str) -> Vec<AtService> {
        self.with(|st, _| {
            st.services
                .records()
                .filter(|r| r.name.eq_ignore_ascii_case(name))
                .cloned()
                .collect()
        })
    }

    /// Current state of a service.
    pub fn service(&self, id: i64) -> Option<AtService> {
        self.with(|st, _| st.services.get(id).cloned())
    }

    /// Adds a Recurring Service contract with monthly periods.
    pub fn add_contract(&self, c: AtNewContract) -> i64 {
        self.with(|st, now| {
            assert!(
                st.companies.get(c.company_id).is_some(),
                "psa-sandbox: unknown Autotask company {}",
                c.company_id
            );
            for (name, _) in &c.udfs {
                if st.udf_def(Entity::Contracts, name).is_none() {
                    st.define_udf(
                        Entity::Contracts,
                        UdfDef {
                            name: name.clone(),
                            picklist: None,
                        },
                    );
                }
            }
            let start = c.start_date.map(whole_millis).unwrap_or_else(|| {
                at_midnight(now.date_naive().with_day(1).expect("first of month"))
            });
            let end = c.end_date.map(whole_millis).unwrap_or_else(|| {
                at_midnight(
                    start
                        .date_naive()
                        .checked_add_months(Months::new(12))
                        .and_then(|d| d.pred_opt())
                        .expect("valid date"),
                )
            });
            let mut udfs = st.blank_udfs(Entity::Contracts);
            for (name, value) in c.udfs {
                if let Some(u) = udfs.iter_mut().find(|u| u.name.eq_ignore_ascii_case(&name)) {
                    u.value = Some(value);
                }
            }
            st.contracts.insert(|id| AtContract {
                id,
                company_id: c.company_id,
                contract_name: c.name,
                contract_number: None,
                contract_type: RECURRING_SERVICE,
                contract_category: None,
                contract_period_type: 1,
                status: i64::from(c.status_active),
                start_date: start,
                end_date: end,
                is_default_contract: false,
                description: None,
                last_modified_date_time: now,
                user_defined_fields: udfs,
            })
        })
    }

    /// Changes a contract; bumps `lastModifiedDateTime`.
    pub fn update_contract(&self, id: i64, f: impl FnOnce(&mut AtContract)) {
        self.with(|st, now| {
            let ok = st.contracts.update(id, now, f);
            assert!(ok, "psa-sandbox: unknown Autotask contract {id}");
        })
    }

    /// Current state of a contract.
    pub fn contract(&self, id: i64) -> Option<AtContract> {
        self.with(|st, _| st.contracts.get(id).cloned())
    }

    /// Adds a service to a contract (prices from the service) and creates its
    /// ContractServiceUnits with `units` from the current period through the contract end.
    pub fn add_contract_service(&self, contract_id: i64, service_id: i64, units: f64) -> i64 {
        self.with(|st, now| {
            st.create_contract_service(
                contract_id,
                service_id,
                None,
                None,
                None,
                None,
                units,
                now.date_naive(),
            )
            .unwrap_or_else(|e| panic!("psa-sandbox: add_contract_service: {e}"))
        })
    }

    /// Adds `delta` units effective today (fake clock, clamped into the contract), exactly
    /// like a ContractServiceAdjustment posted over HTTP.
    pub fn adjust_units(&self, contract_service_id: i64, delta: f64) {
        self.with(|st, now| {
            let cs = st
                .contract_services
                .get(contract_service_id)
                .cloned()
                .unwrap_or_else(|| {
                    panic!("psa-sandbox: unknown contract service {contract_service_id}")
                });
            let c = st.contracts.get(cs.contract_id).cloned().expect("contract");
            let day = now
                .date_naive()
                .clamp(c.start_date.date_naive(), c.end_date.date_naive());
            st.adjust(
                cs.contract_id,
                Some(contract_service_id),
                None,
                delta,
                day,
                None,
                None,
                false,
            )
            .unwrap_or_else(|e| panic!("psa-sandbox: adjust_units: {e}"));
        })
    }

    /// The contract's services as the API returns them, each with an extra `units` (current).
    pub fn contract_services(&self, contract_id: i64) -> Vec<Value> {
        self.with(|st, now| {
            st.contract_services
                .child_ids(contract_id)
                .filter_map(|id| {
                    let mut v = st.contract_services.json(id)?.clone();
                    v["units"] = num_json(st.units_on(id, now.date_naive()));
                    Some(v)
                })
                .collect()
        })
    }

    /// Current units of a contract service (the period covering today, fake clock).
    pub fn units(&self, contract_service_id: i64) -> f64 {
        self.with(|st, now| {
            assert!(
                st.contract_services.get(contract_service_id).is_some(),
                "psa-sandbox: unknown contract service {contract_service_id}"
            );
            st.units_on(contract_service_id, now.date_naive())
        })
    }

    /// All ContractServiceUnits of a contract service, by start date.
    pub fn service_units(&self, contract_service_id: i64) -> Vec<AtContractServiceUnit> {
        self.with(|st, _| {
            st.unit_records(contract_service_id)
                .into_iter()
                .cloned()
                .collect()
        })
    }

    /// All adjustments posted for a contract (HTTP or [`AutotaskFake::adjust_units`]), by id.
    pub fn adjustments(&self, contract_id: i64) -> Vec<AtContractServiceAdjustment> {
        self.with(|st, _| {
            st.adjustments
                .records()
                .filter(|r| r.contract_id == contract_id)
                .cloned()
                .collect()
        })
    }
}
