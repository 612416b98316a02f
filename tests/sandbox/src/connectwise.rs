//! Fake ConnectWise Manage (REST 3.0).

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use base64::Engine;
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{
    common::{self, lock, Common, Table},
    conditions::{self, Expr},
};

/// Codebase every fake instance reports.
pub const CODEBASE: &str = "v2025_1/";
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 25;

// ---------------------------------------------------------------------------------------------
// Wire datetime format: "2026-11-22T00:00:00Z"
// ---------------------------------------------------------------------------------------------

/// Formats a datetime the way Manage does (`2026-11-22T00:00:00Z`, whole seconds).
pub fn cw_format(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn trunc(d: DateTime<Utc>) -> DateTime<Utc> {
    d.with_nanosecond(0).unwrap_or(d)
}

mod cw_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::cw_format(d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        crate::conditions::parse_datetime(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}")))
    }
}

mod cw_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::cw_format(d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => crate::conditions::parse_datetime(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// `_info` block; `lastUpdated` is stamped with the fake's clock on every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwInfo {
    #[serde(rename = "lastUpdated", with = "cw_time")]
    pub last_updated: DateTime<Utc>,
    #[serde(rename = "updatedBy")]
    pub updated_by: String,
}

/// `{id, name}` reference (status, type, contact …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwRef {
    pub id: i64,
    pub name: String,
}

/// `CompanyReference` `{id, identifier, name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwCompanyRef {
    pub id: i64,
    pub identifier: String,
    pub name: String,
}

/// `IvItemReference` `{id, identifier}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwProductRef {
    pub id: i64,
    pub identifier: String,
}

/// `company/companies` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCompany {
    pub id: i64,
    pub identifier: String,
    pub name: String,
    pub status: CwRef,
    pub types: Vec<CwRef>,
    pub deleted_flag: bool,
    pub default_contact: Option<CwRef>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// One entry of a contact's `communicationItems`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCommunicationItem {
    pub id: i64,
    #[serde(rename = "type")]
    pub item_type: CwRef,
    pub value: String,
    pub default_flag: bool,
    pub communication_type: String,
}

/// `company/contacts` record (made for a company's primary contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwContact {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub company: CwCompanyRef,
    pub inactive_flag: bool,
    pub default_flag: bool,
    pub communication_items: Vec<CwCommunicationItem>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `finance/agreements` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAgreement {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub agreement_type: CwRef,
    pub company: CwCompanyRef,
    pub contact: Option<CwRef>,
    #[serde(with = "cw_time_opt")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(with = "cw_time_opt")]
    pub end_date: Option<DateTime<Utc>>,
    pub no_ending_date_flag: bool,
    pub cancelled_flag: bool,
    #[serde(with = "cw_time_opt")]
    pub date_cancelled: Option<DateTime<Utc>>,
    /// `Active | Cancelled | Expired | Inactive`.
    pub agreement_status: String,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `finance/agreements/{parentId}/additions` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAddition {
    pub id: i64,
    pub product: CwProductRef,
    pub quantity: f64,
    pub less_included: f64,
    pub unit_price: f64,
    /// `Billable | DoNotBill | NoCharge`.
    pub bill_customer: String,
    #[serde(with = "cw_time_opt")]
    pub effective_date: Option<DateTime<Utc>>,
    #[serde(with = "cw_time_opt")]
    pub cancelled_date: Option<DateTime<Utc>>,
    pub agreement_id: i64,
    pub description: String,
    pub invoice_description: Option<String>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `procurement/catalog` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCatalogItem {
    pub id: i64,
    pub identifier: String,
    pub description: String,
    pub customer_description: String,
    pub inactive_flag: bool,
    pub product_class: String,
    pub recurring_flag: bool,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// Input of [`ConnectWiseFake::add_company`].
#[derive(Debug, Clone, Default)]
pub struct NewCompany {
    pub identifier: String,
    pub name: String,
    /// Company type name (e.g. "Client"); `None` = no types.
    pub type_name: Option<String>,
    /// Status name; `None` = "Active".
    pub status_name: Option<String>,
    /// `(first name, last name, email)`; creates a contact and sets `defaultContact`.
    pub primary_contact: Option<(String, String, String)>,
}

/// Input of [`ConnectWiseFake::add_agreement`].
#[derive(Debug, Clone, Default)]
pub struct NewAgreement {
    pub company_id: i64,
    pub name: String,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub no_ending_date_flag: bool,
    pub cancelled_flag: bool,
    pub date_cancelled: Option<DateTime<Utc>>,
}

/// Input of [`ConnectWiseFake::add_addition`].
#[derive(Debug, Clone, Default)]
pub struct NewAddition {
    pub product_id: i64,
    pub quantity: f64,
    pub less_included: f64,
    pub effective_date: Option<DateTime<Utc>>,
    pub cancelled_date: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// One Manage "site tenant" (a login company with its API member keys).
struct Instance {
    login_company_id: String,
    public_key: String,
    private_key: String,
    codebase: String,
    companies: Table<CwCompany>,
    contacts: Table<CwContact>,
    agreements: Table<CwAgreement>,
    additions: Table<CwAddition>,
    /// (agreement id, addition id)
    addition_index: BTreeSet<(i64, i64)>,
    products: Table<CwCatalogItem>,
    callbacks: Table<Value>,
    statuses: BTreeMap<String, CwRef>,
    types: BTreeMap<String, CwRef>,
    next_comm_id: i64,
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
    fn new(login_company_id: &str, public_key: &str, private_key: &str) -> Self {
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
            addition_index: BTreeSet::new(),
            products: Table::new(100),
            callbacks: Table::new(1),
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

    fn lookup(table: &mut BTreeMap<String, CwRef>, name: &str) -> CwRef {
        let next = table.values().map(|r| r.id).max().unwrap_or(0).max(9) + 1;
        table
            .entry(name.to_lowercase())
            .or_insert_with(|| CwRef {
                id: next,
                name: name.to_string(),
            })
            .clone()
    }

    fn company_ref(&self, id: i64) -> Option<CwCompanyRef> {
        self.companies.get(id).map(|c| CwCompanyRef {
            id: c.id,
            identifier: c.identifier.clone(),
            name: c.name.clone(),
        })
    }

    fn rows_from<'a>(
        &'a self,
        res: Res,
        after: i64,
    ) -> Box<dyn Iterator<Item = (i64, &'a Value)> + 'a> {
        let start = after.saturating_add(1);
        fn range<T>(t: &Table<T>, start: i64) -> Box<dyn Iterator<Item = (i64, &Value)> + '_> {
            Box::new(t.rows.range(start..).map(|(id, r)| (*id, &r.json)))
        }
        match res {
            Res::Companies => range(&self.companies, start),
            Res::Contacts => range(&self.contacts, start),
            Res::Agreements => range(&self.agreements, start),
            Res::Catalog => range(&self.products, start),
            Res::Callbacks => range(&self.callbacks, start),
            Res::Additions(a) => Box::new(
                self.addition_index
                    .range((a, start)..=(a, i64::MAX))
                    .filter_map(move |(_, id)| self.additions.rows.get(id).map(|r| (*id, &r.json))),
            ),
        }
    }

    fn row(&self, res: Res, id: i64) -> Option<&Value> {
        match res {
            Res::Companies => self.companies.rows.get(&id).map(|r| &r.json),
            Res::Contacts => self.contacts.rows.get(&id).map(|r| &r.json),
            Res::Agreements => self.agreements.rows.get(&id).map(|r| &r.json),
            Res::Catalog => self.products.rows.get(&id).map(|r| &r.json),
            Res::Callbacks => self.callbacks.rows.get(&id).map(|r| &r.json),
            Res::Additions(a) => {
                if self.addition_index.contains(&(a, id)) {
                    self.additions.rows.get(&id).map(|r| &r.json)
                } else {
                    None
                }
            }
        }
    }
}

#[derive(Default)]
struct CwState {
    /// By lower-cased login company id.
    instances: BTreeMap<String, Instance>,
}

/// Which list resource a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Companies,
    Contacts,
    Agreements,
    Additions(i64),
    Catalog,
    Callbacks,
}

impl Res {
    fn label(self) -> &'static str {
        match self {
            Res::Companies => "Company",
            Res::Contacts => "Contact",
            Res::Agreements => "Agreement",
            Res::Additions(_) => "Addition",
            Res::Catalog => "CatalogItem",
            Res::Callbacks => "Callback",
        }
    }
    /// Top-level field names (for validating `conditions` / `orderBy`).
    fn fields(self) -> Vec<String> {
        let v = match self {
            Res::Companies => serde_json::to_value(CwCompany::default()),
            Res::Contacts => serde_json::to_value(CwContact::default()),
            Res::Agreements => serde_json::to_value(CwAgreement::default()),
            Res::Additions(_) => serde_json::to_value(CwAddition::default()),
            Res::Catalog => serde_json::to_value(CwCatalogItem::default()),
            Res::Callbacks => Ok(callback_template()),
        }
        .unwrap_or(Value::Null);
        let mut keys: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.push("lastUpdated".into());
        keys
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn cw_error(status: StatusCode, code: &str, message: &str, errors: Value) -> Response {
    common::json_response(
        status,
        &json!({"code": code, "message": message, "errors": errors}),
    )
}

fn not_found(res: Res, id: &str) -> Response {
    cw_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} recordId {} not found.", res.label(), id),
        Value::Null,
    )
}

fn invalid(resource: &str, field: &str, message: &str) -> Response {
    cw_error(
        StatusCode::BAD_REQUEST,
        "InvalidObject",
        &format!("{resource} object is invalid"),
        json!([{
            "code": "InvalidField",
            "message": message,
            "resource": resource,
            "field": field,
        }]),
    )
}

fn bad_request(message: &str) -> Response {
    cw_error(
        StatusCode::BAD_REQUEST,
        "InvalidObject",
        message,
        json!([{"code": "InvalidObject", "message": message}]),
    )
}

fn unauthorized(message: &str) -> Response {
    cw_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        message,
        Value::Null,
    )
}

/// Error response for `Status` faults.
fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let mut resp = match status.as_u16() {
        429 => common::json_response(
            status,
            &json!({
                "error": "ConnectWiseAPI",
                "message": format!(
                    "Too many requests. Please try again in {} seconds.",
                    retry_after.unwrap_or(30)
                ),
            }),
        ),
        500 => cw_error(
            status,
            "UnexpectedServerError",
            "An unexpected server error has occurred.",
            Value::Null,
        ),
        401 => unauthorized("Authentication credentials were missing or incorrect."),
        404 => cw_error(status, "NotFound", "Not found.", Value::Null),
        400 => bad_request("Bad request."),
        409 => cw_error(status, "Conflict", "Conflict.", Value::Null),
        _ => cw_error(
            status,
            status.canonical_reason().unwrap_or("Error"),
            "Injected fault.",
            Value::Null,
        ),
    };
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

struct CwInner {
    url: String,
    common: Arc<Common>,
    state: Mutex<CwState>,
}

/// Handle to a running fake ConnectWise Manage server (cheap to clone).
#[derive(Clone)]
pub struct ConnectWiseFake {
    inner: Arc<CwInner>,
}

impl std::fmt::Debug for ConnectWiseFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWiseFake")
            .field("url", &self.inner.url)
            .finish()
    }
}

impl ConnectWiseFake {
    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> io::Result<ConnectWiseFake> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<ConnectWiseFake> {
        let (listener, local) = common::bind(addr).await?;
        let inner = Arc::new(CwInner {
            url: format!("http://{local}"),
            common: Common::new(fault_response),
            state: Mutex::new(CwState::default()),
        });
        let app = common::assemble(router(inner.clone()), &inner.common);
        common::spawn(listener, app);
        Ok(ConnectWiseFake { inner })
    }

    fn now(&self) -> DateTime<Utc> {
        trunc(self.inner.common.clock.now())
    }

    fn with<R>(&self, inst: &str, f: impl FnOnce(&mut Instance, DateTime<Utc>) -> R) -> R {
        let now = self.now();
        let mut st = lock(&self.inner.state);
        let i = st
            .instances
            .get_mut(&inst.to_lowercase())
            .unwrap_or_else(|| panic!("psa-sandbox: unknown ConnectWise instance {inst:?}"));
        f(i, now)
    }

    fn info(now: DateTime<Utc>) -> CwInfo {
        CwInfo {
            last_updated: now,
            updated_by: "psa-sandbox".into(),
        }
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
                let cid = i.contacts.alloc();
                let comm_id = i.next_comm_id;
                i.next_comm_id += 1;
                let name = format!("{first} {last}").trim().to_string();
                i.contacts.put(
                    cid,
                    CwContact {
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
                        info: Self::info(now),
                    },
                );
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
                    info: Self::info(now),
                },
            );
            id
        })
    }

    /// Changes a company (as if edited in the UI); bumps `_info.lastUpdated` and refreshes the
    /// company references held by its agreements and contacts.
    pub fn update_company(&self, inst: &str, id: i64, f: impl FnOnce(&mut CwCompany)) {
        self.with(inst, |i, now| {
            let ok = i.companies.modify(id, |c| {
                f(c);
                c.info = Self::info(now);
            });
            assert!(ok, "psa-sandbox: unknown company {id}");
            let r = i.company_ref(id).expect("exists");
            let agreements: Vec<i64> = i
                .agreements
                .rows
                .iter()
                .filter(|(_, a)| a.rec.company.id == id)
                .map(|(k, _)| *k)
                .collect();
            for a in agreements {
                i.agreements.modify(a, |a| a.company = r.clone());
            }
            let contacts: Vec<i64> = i
                .contacts
                .rows
                .iter()
                .filter(|(_, c)| c.rec.company.id == id)
                .map(|(k, _)| *k)
                .collect();
            for c in contacts {
                i.contacts.modify(c, |c| c.company = r.clone());
            }
        })
    }

    /// Adds a procurement catalog item (product).
    pub fn add_product(&self, inst: &str, identifier: &str, description: &str) -> i64 {
        self.with(inst, |i, now| {
            let id = i.products.alloc();
            i.products.put(
                id,
                CwCatalogItem {
                    id,
                    identifier: identifier.to_string(),
                    description: description.to_string(),
                    customer_description: description.to_string(),
                    inactive_flag: false,
                    product_class: "Agreement".into(),
                    recurring_flag: true,
                    info: Self::info(now),
                },
            );
            id
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
            let status = if a.cancelled_flag {
                "Cancelled"
            } else if !a.no_ending_date_flag && a.end_date.is_some_and(|e| e < now) {
                "Expired"
            } else {
                "Active"
            };
            let id = i.agreements.alloc();
            i.agreements.put(
                id,
                CwAgreement {
                    id,
                    name: a.name,
                    agreement_type: CwRef {
                        id: 1,
                        name: "Managed Services".into(),
                    },
                    company,
                    contact,
                    start_date: a.start_date.map(trunc),
                    end_date: a.end_date.map(trunc),
                    no_ending_date_flag: a.no_ending_date_flag,
                    cancelled_flag: a.cancelled_flag,
                    date_cancelled: a.date_cancelled.map(trunc),
                    agreement_status: status.into(),
                    info: Self::info(now),
                },
            );
            id
        })
    }

    /// Changes an agreement; bumps `_info.lastUpdated`. If the closure sets `cancelled_flag`,
    /// `agreement_status` becomes `Cancelled` (other status changes are up to the closure).
    pub fn update_agreement(&self, inst: &str, id: i64, f: impl FnOnce(&mut CwAgreement)) {
        self.with(inst, |i, now| {
            let ok = i.agreements.modify(id, |a| {
                f(a);
                if a.cancelled_flag {
                    a.agreement_status = "Cancelled".into();
                }
                a.info = Self::info(now);
            });
            assert!(ok, "psa-sandbox: unknown agreement {id}");
        })
    }

    /// Adds an addition (billCustomer "Billable", unitPrice 0, description = product's).
    pub fn add_addition(&self, inst: &str, agreement_id: i64, a: NewAddition) -> i64 {
        self.with(inst, |i, now| {
            assert!(
                i.agreements.get(agreement_id).is_some(),
                "psa-sandbox: unknown agreement {agreement_id}"
            );
            let p = i
                .products
                .get(a.product_id)
                .unwrap_or_else(|| panic!("psa-sandbox: unknown product {}", a.product_id))
                .clone();
            let id = i.additions.alloc();
            i.additions.put(
                id,
                CwAddition {
                    id,
                    product: CwProductRef {
                        id: p.id,
                        identifier: p.identifier,
                    },
                    quantity: a.quantity,
                    less_included: a.less_included,
                    unit_price: 0.0,
                    bill_customer: "Billable".into(),
                    effective_date: a.effective_date.map(trunc),
                    cancelled_date: a.cancelled_date.map(trunc),
                    agreement_id,
                    description: p.description,
                    invoice_description: None,
                    info: Self::info(now),
                },
            );
            i.addition_index.insert((agreement_id, id));
            id
        })
    }

    /// Changes an addition; bumps its `_info.lastUpdated`.
    pub fn update_addition(
        &self,
        inst: &str,
        agreement_id: i64,
        id: i64,
        f: impl FnOnce(&mut CwAddition),
    ) {
        self.with(inst, |i, now| {
            assert!(
                i.addition_index.contains(&(agreement_id, id)),
                "psa-sandbox: unknown addition {agreement_id}/{id}"
            );
            i.additions.modify(id, |a| {
                f(a);
                a.info = Self::info(now);
            });
        })
    }

    /// Deletes an addition (no-op if absent).
    pub fn remove_addition(&self, inst: &str, agreement_id: i64, id: i64) {
        self.with(inst, |i, _| {
            if i.addition_index.remove(&(agreement_id, id)) {
                i.additions.rows.remove(&id);
            }
        })
    }

    /// Current state of an addition.
    pub fn addition(&self, inst: &str, agreement_id: i64, id: i64) -> Option<CwAddition> {
        self.with(inst, |i, _| {
            if i.addition_index.contains(&(agreement_id, id)) {
                i.additions.get(id).cloned()
            } else {
                None
            }
        })
    }

    /// All additions of an agreement, by id.
    pub fn additions(&self, inst: &str, agreement_id: i64) -> Vec<CwAddition> {
        self.with(inst, |i, _| {
            i.addition_index
                .range((agreement_id, i64::MIN)..=(agreement_id, i64::MAX))
                .filter_map(|(_, id)| i.additions.get(*id).cloned())
                .collect()
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
        self.with(inst, |i, _| {
            i.callbacks.rows.values().map(|r| r.json.clone()).collect()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

type Cw = Arc<CwInner>;

const API: &str = "/{codebase}/apis/3.0";

fn router(inner: Cw) -> Router {
    let mut r: Router<Cw> = Router::new()
        .route("/login/companyinfo/{company}", get(company_info))
        .route(&format!("{API}/system/info"), get(system_info));
    for (path, res) in [
        ("company/companies", Res::Companies),
        ("company/contacts", Res::Contacts),
        ("finance/agreements", Res::Agreements),
        ("procurement/catalog", Res::Catalog),
        ("system/callbacks", Res::Callbacks),
    ] {
        let base = format!("{API}/{path}");
        let mut list = get(
            move |State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap, uri: Uri| async move {
                s.list(&cb, &h, &uri, res, None, false)
            },
        );
        let mut one = get(
            move |State(s): State<Cw>, Path((cb, id)): Path<(String, String)>, h: HeaderMap| async move {
                s.get_one(&cb, &h, res, None, &id)
            },
        );
        if res == Res::Callbacks {
            list = list.post(
                |State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap, body: Bytes| async move {
                    s.callback_write(&cb, &h, None, &body)
                },
            );
            one = one
                .put(
                    |State(s): State<Cw>,
                     Path((cb, id)): Path<(String, String)>,
                     h: HeaderMap,
                     body: Bytes| async move {
                        s.callback_write(&cb, &h, Some(&id), &body)
                    },
                )
                .delete(
                    |State(s): State<Cw>, Path((cb, id)): Path<(String, String)>, h: HeaderMap| async move {
                        s.callback_delete(&cb, &h, &id)
                    },
                );
        }
        r =
            r.route(&base, list)
                .route(
                    &format!("{base}/count"),
                    get(
                        move |State(s): State<Cw>,
                              Path(cb): Path<String>,
                              h: HeaderMap,
                              uri: Uri| async move {
                            s.list(&cb, &h, &uri, res, None, true)
                        },
                    ),
                )
                .route(&format!("{base}/{{id}}"), one);
    }
    let add = format!("{API}/finance/agreements/{{parentId}}/additions");
    r = r
        .route(
            &add,
            get(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 uri: Uri| async move {
                    s.list(&cb, &h, &uri, Res::Additions(0), Some(&p), false)
                },
            )
            .post(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, None, Write::Post, &body)
                },
            ),
        )
        .route(
            &format!("{add}/count"),
            get(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 uri: Uri| async move {
                    s.list(&cb, &h, &uri, Res::Additions(0), Some(&p), true)
                },
            ),
        )
        .route(
            &format!("{add}/{{id}}"),
            get(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap| async move {
                    s.get_one(&cb, &h, Res::Additions(0), Some(&p), &id)
                },
            )
            .put(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, Some(&id), Write::Put, &body)
                },
            )
            .patch(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, Some(&id), Write::Patch, &body)
                },
            )
            .delete(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap| async move { s.addition_delete(&cb, &h, &p, &id) },
            ),
        );
    r.fallback(|| async {
        cw_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource does not exist.",
            Value::Null,
        )
    })
    .with_state(inner)
}

async fn company_info(State(s): State<Cw>, Path(company): Path<String>) -> Response {
    let st = lock(&s.state);
    let body = match st.instances.get(&company.to_lowercase()) {
        Some(i) => json!({
            "CompanyName": i.login_company_id,
            "Codebase": i.codebase,
            "VersionCode": "v2025.1",
            "VersionNumber": "v2025.1.100000",
            "CompanyID": i.login_company_id,
            "IsCloud": true,
        }),
        None => Value::Null,
    };
    common::json_response(StatusCode::OK, &body)
}

async fn system_info(State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap) -> Response {
    s.with_instance(&cb, &h, |_, _| {
        common::json_response(
            StatusCode::OK,
            &json!({
                "version": "v2025.1.100000",
                "isCloud": true,
                "serverTimeZone": "Eastern Standard Time",
                "licenseBits": [],
                "cloudRegion": "NA",
                "maxWorkFlowRecordsAllowed": 500,
            }),
        )
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Post,
    Put,
    Patch,
}

/// Query parameters, keys lower-cased (Manage treats them case-insensitively).
struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    fn from_uri(uri: &Uri) -> Self {
        QueryParams {
            pairs: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
    fn int(&self, key: &str) -> Result<Option<i64>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| bad_request(&format!("{key} must be an integer"))),
        }
    }
    /// The query with `drop` keys removed and `set` appended.
    fn link(&self, base: &str, drop: &[&str], set: &[(&str, String)]) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !drop.iter().any(|d| d.eq_ignore_ascii_case(k)) {
                ser.append_pair(k, v);
            }
        }
        for (k, v) in set {
            ser.append_pair(k, v);
        }
        format!("{base}?{}", ser.finish())
    }
}

fn parse_basic(headers: &HeaderMap) -> Option<(String, String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (user, private) = s.split_once(':')?;
    let (company, public) = user.split_once('+')?;
    Some((company.to_string(), public.to_string(), private.to_string()))
}

fn authenticate<'a>(
    st: &'a mut CwState,
    headers: &HeaderMap,
    codebase: &str,
) -> Result<&'a mut Instance, Response> {
    let bad = || unauthorized("Authentication credentials were missing or incorrect.");
    let (company, public, private) = parse_basic(headers).ok_or_else(bad)?;
    let inst = st
        .instances
        .get_mut(&company.to_lowercase())
        .ok_or_else(bad)?;
    if inst.public_key != public || inst.private_key != private {
        return Err(bad());
    }
    let client_id = headers
        .get("clientId")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if client_id.is_empty() {
        return Err(unauthorized(
            "A clientId header is required. Register at developer.connectwise.com to obtain a clientId.",
        ));
    }
    if format!("{codebase}/") != inst.codebase {
        return Err(cw_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Codebase '{codebase}/' is not served for this company."),
            Value::Null,
        ));
    }
    Ok(inst)
}

fn parse_id(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

/// `orderBy=name asc, id desc`
fn parse_order(s: &str, fields: &[String]) -> Result<Vec<(Vec<String>, bool)>, Response> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) => return Err(bad_request(&format!("orderBy: unexpected '{w}'"))),
        };
        let path: Vec<String> = field.split('/').map(str::to_string).collect();
        if !fields.iter().any(|f| f.eq_ignore_ascii_case(&path[0])) {
            return Err(bad_request(&format!("orderBy: unknown field '{field}'")));
        }
        out.push((path, desc));
    }
    Ok(out)
}

fn sort_key<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    let mut cur = v;
    let aliased;
    let path: &[String] = if path.len() == 1 && path[0].eq_ignore_ascii_case("lastUpdated") {
        aliased = ["_info".to_string(), "lastUpdated".to_string()];
        &aliased
    } else {
        path
    };
    for seg in path {
        match conditions::get_ci(cur, seg) {
            Some(n) => cur = n,
            None => return &Value::Null,
        }
    }
    cur
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl CwInner {
    /// Runs `f` under the state lock; its result is turned into a response (serialized)
    /// after the lock is released.
    fn with_instance<R: IntoResponse>(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        f: impl FnOnce(&mut Instance, DateTime<Utc>) -> R,
    ) -> Response {
        let now = trunc(self.common.clock.now());
        let out = {
            let mut st = lock(&self.state);
            match authenticate(&mut st, headers, codebase) {
                Ok(inst) => Ok(f(inst, now)),
                Err(r) => Err(r),
            }
        };
        match out {
            Ok(r) => r.into_response(),
            Err(r) => r,
        }
    }

    /// Resolves `Res::Additions(_)` with the parent id from the path.
    fn resolve(inst: &Instance, res: Res, parent: Option<&str>) -> Result<Res, Response> {
        match (res, parent) {
            (Res::Additions(_), Some(p)) => match parse_id(p) {
                Some(a) if inst.agreements.get(a).is_some() => Ok(Res::Additions(a)),
                _ => Err(not_found(Res::Agreements, p)),
            },
            (r, _) => Ok(r),
        }
    }

    fn list(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        uri: &Uri,
        res: Res,
        parent: Option<&str>,
        count_only: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let forward_only = headers
            .get("pagination-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));
        let link_base = format!("{}{}", self.url, uri.path());
        self.with_instance(codebase, headers, |inst, _| {
            let res = match Self::resolve(inst, res, parent) {
                Ok(r) => r,
                Err(e) => return ListOut::Done(e),
            };
            let fields = res.fields();
            let expr: Option<Expr> = match q.get("conditions") {
                None => None,
                Some(c) => match conditions::parse(c) {
                    Ok(e) => {
                        if let Some(p) = e
                            .paths()
                            .into_iter()
                            .find(|p| !fields.iter().any(|f| f.eq_ignore_ascii_case(&p[0])))
                        {
                            return ListOut::Done(invalid(
                                res.label(),
                                "conditions",
                                &format!(
                                    "Cannot find property '{}' on {}.",
                                    p.join("/"),
                                    res.label()
                                ),
                            ));
                        }
                        Some(e)
                    }
                    Err(err) => {
                        return ListOut::Done(invalid(
                            res.label(),
                            "conditions",
                            &format!("conditions is invalid: {err}"),
                        ))
                    }
                },
            };
            let matches = |v: &Value| expr.as_ref().is_none_or(|e| e.matches(v));
            if count_only {
                let n = inst
                    .rows_from(res, i64::MIN)
                    .filter(|(_, v)| matches(v))
                    .count();
                return ListOut::Done(common::json_response(
                    StatusCode::OK,
                    &json!({ "count": n }),
                ));
            }
            let page_size = match q.int("pageSize") {
                Ok(Some(n)) if n >= 1 => (n as usize).min(MAX_PAGE_SIZE),
                Ok(_) => DEFAULT_PAGE_SIZE,
                Err(e) => return ListOut::Done(e),
            };
            let order = match q.get("orderBy") {
                Some(_) if forward_only => {
                    return ListOut::Done(bad_request(
                        "orderBy is not supported with forward-only pagination.",
                    ));
                }
                Some(o) => match parse_order(o, &fields) {
                    Ok(v) => v,
                    Err(e) => return ListOut::Done(e),
                },
                None => Vec::new(),
            };
            let mut links: Vec<(String, &str)> = Vec::new();
            let page: Vec<&Value> = if forward_only {
                let after = match q.int("pageId") {
                    Ok(v) => v.unwrap_or(0),
                    Err(e) => return ListOut::Done(e),
                };
                let mut it = inst.rows_from(res, after).filter(|(_, v)| matches(v));
                let page: Vec<(i64, &Value)> = it.by_ref().take(page_size).collect();
                if let (Some((last, _)), true) = (page.last(), it.next().is_some()) {
                    links.push((
                        q.link(
                            &link_base,
                            &["pageId", "page"],
                            &[("pageId", last.to_string())],
                        ),
                        "next",
                    ));
                }
                page.into_iter().map(|(_, v)| v).collect()
            } else {
                let page_no = match q.int("page") {
                    Ok(Some(n)) if n >= 1 => n as usize,
                    Ok(_) => 1,
                    Err(e) => return ListOut::Done(e),
                };
                let skip = (page_no - 1).saturating_mul(page_size);
                let (total, page) = if order.is_empty() {
                    let mut total = 0usize;
                    let mut page = Vec::with_capacity(page_size.min(1024));
                    for (_, v) in inst.rows_from(res, i64::MIN) {
                        if matches(v) {
                            if total >= skip && total < skip + page_size {
                                page.push(v);
                            }
                            total += 1;
                        }
                    }
                    (total, page)
                } else {
                    let mut all: Vec<&Value> = inst
                        .rows_from(res, i64::MIN)
                        .filter(|(_, v)| matches(v))
                        .map(|(_, v)| v)
                        .collect();
                    all.sort_by(|a, b| {
                        for (path, desc) in &order {
                            let o = cmp_json(sort_key(a, path), sort_key(b, path));
                            let o = if *desc { o.reverse() } else { o };
                            if o.is_ne() {
                                return o;
                            }
                        }
                        std::cmp::Ordering::Equal
                    });
                    let total = all.len();
                    (total, all.into_iter().skip(skip).take(page_size).collect())
                };
                let last = total.div_ceil(page_size).max(1);
                let mk = |n: usize| q.link(&link_base, &["page"], &[("page", n.to_string())]);
                if page_no > 1 {
                    links.push((mk(1), "first"));
                    links.push((mk((page_no - 1).min(last)), "prev"));
                }
                if page_no < last {
                    links.push((mk(page_no + 1), "next"));
                    links.push((mk(last), "last"));
                }
                page
            };
            let link = (!links.is_empty()).then(|| {
                links
                    .iter()
                    .map(|(u, rel)| format!("<{u}>; rel=\"{rel}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            ListOut::Page(page.into_iter().cloned().collect(), link)
        })
    }

    fn get_one(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        res: Res,
        parent: Option<&str>,
        id: &str,
    ) -> Response {
        self.with_instance(codebase, headers, |inst, _| {
            let res = match Self::resolve(inst, res, parent) {
                Ok(r) => r,
                Err(e) => return e,
            };
            match parse_id(id).and_then(|n| inst.row(res, n)) {
                Some(v) => common::json_response(StatusCode::OK, v),
                None => not_found(res, id),
            }
        })
    }

    fn callback_write(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        id: Option<&str>,
        body: &[u8],
    ) -> Response {
        self.with_instance(codebase, headers, |inst, now| {
            let existing = match id {
                Some(s) => match parse_id(s).filter(|n| inst.callbacks.get(*n).is_some()) {
                    Some(n) => Some(n),
                    None => return not_found(Res::Callbacks, s),
                },
                None => None,
            };
            let b: Value = match serde_json::from_slice(body) {
                Ok(v @ Value::Object(_)) => v,
                _ => return bad_request("The request body must be a JSON object."),
            };
            for f in ["url", "objectId", "type", "level"] {
                if b.get(f).is_none_or(|v| v.is_null() || v == "") {
                    return invalid("callback", f, &format!("The {f} field is required."));
                }
            }
            let Some(object_id) = b["objectId"].as_i64() else {
                return invalid("callback", "objectId", "objectId must be an integer.");
            };
            let new_id = existing.unwrap_or_else(|| inst.callbacks.alloc());
            let s = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
            let rec = json!({
                "id": new_id,
                "description": b.get("description").cloned().unwrap_or(json!("")),
                "url": s("url"),
                "objectId": object_id,
                "type": s("type"),
                "level": s("level"),
                "memberId": 1,
                "payloadVersion": s("payloadVersion"),
                "inactiveFlag": b.get("inactiveFlag").and_then(Value::as_bool).unwrap_or(false),
                "isSoapCallbackFlag": b.get("isSoapCallbackFlag").and_then(Value::as_bool).unwrap_or(false),
                "isSelfSuppressedFlag": b.get("isSelfSuppressedFlag").and_then(Value::as_bool).unwrap_or(false),
                "connectWiseID": uuid::Uuid::new_v4().to_string(),
                "_info": {"lastUpdated": cw_format(&now), "updatedBy": "psa-sandbox"},
            });
            inst.callbacks.put(new_id, rec.clone());
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            common::json_response(status, &rec)
        })
    }

    fn callback_delete(&self, codebase: &str, headers: &HeaderMap, id: &str) -> Response {
        self.with_instance(codebase, headers, |inst, _| {
            match parse_id(id).and_then(|n| inst.callbacks.rows.remove(&n)) {
                Some(_) => StatusCode::NO_CONTENT.into_response(),
                None => not_found(Res::Callbacks, id),
            }
        })
    }

    fn addition_write(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        parent: &str,
        id: Option<&str>,
        mode: Write,
        body: &[u8],
    ) -> Response {
        self.with_instance(codebase, headers, |inst, now| {
            let res = match Self::resolve(inst, Res::Additions(0), Some(parent)) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let Res::Additions(agreement_id) = res else {
                unreachable!()
            };
            let existing = match id {
                Some(s) => match parse_id(s)
                    .filter(|n| inst.addition_index.contains(&(agreement_id, *n)))
                {
                    Some(n) => Some(n),
                    None => return not_found(res, s),
                },
                None => None,
            };
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request(&format!("The request body is not valid JSON: {e}")),
            };
            let input = match mode {
                Write::Post | Write::Put => {
                    if !parsed.is_object() {
                        return bad_request("The request body must be a JSON object.");
                    }
                    parsed
                }
                Write::Patch => {
                    let current = inst.additions.rows[&existing.expect("id")].json.clone();
                    match apply_patch(current, &parsed) {
                        Ok(v) => v,
                        Err(e) => return e,
                    }
                }
            };
            let mut rec = match addition_from_json(inst, &input, mode, now) {
                Ok(r) => r,
                Err(e) => return e,
            };
            rec.agreement_id = agreement_id;
            rec.info = CwInfo {
                last_updated: now,
                updated_by: "psa-sandbox".into(),
            };
            let new_id = existing.unwrap_or_else(|| inst.additions.alloc());
            rec.id = new_id;
            inst.additions.put(new_id, rec);
            inst.addition_index.insert((agreement_id, new_id));
            let json = inst.additions.rows[&new_id].json.clone();
            let status = if mode == Write::Post {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            common::json_response(status, &json)
        })
    }

    fn addition_delete(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        parent: &str,
        id: &str,
    ) -> Response {
        self.with_instance(codebase, headers, |inst, _| {
            let res = match Self::resolve(inst, Res::Additions(0), Some(parent)) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let Res::Additions(agreement_id) = res else {
                unreachable!()
            };
            match parse_id(id).filter(|n| inst.addition_index.remove(&(agreement_id, *n))) {
                Some(n) => {
                    inst.additions.rows.remove(&n);
                    StatusCode::NO_CONTENT.into_response()
                }
                None => not_found(res, id),
            }
        })
    }
}

/// Result of a list request: an early (error/count) response, or a page to serialize once
/// the state lock is released.
enum ListOut {
    Done(Response),
    Page(Vec<Value>, Option<String>),
}

impl IntoResponse for ListOut {
    fn into_response(self) -> Response {
        match self {
            ListOut::Done(r) => r,
            ListOut::Page(page, link) => {
                let body = serde_json::to_vec(&page).expect("serializes");
                let mut resp = common::raw_json(StatusCode::OK, body);
                if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
                    resp.headers_mut().insert(header::LINK, v);
                }
                resp
            }
        }
    }
}

const PATCHABLE: &[&str] = &[
    "product",
    "quantity",
    "lessIncluded",
    "unitPrice",
    "billCustomer",
    "effectiveDate",
    "cancelledDate",
    "description",
    "invoiceDescription",
];

/// Applies a Manage PATCH document (`[{op, path, value}]`) to a record's JSON.
fn apply_patch(mut current: Value, ops: &Value) -> Result<Value, Response> {
    let Some(ops) = ops.as_array() else {
        return Err(bad_request(
            "PATCH body must be a JSON array of {op, path, value} operations.",
        ));
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('/');
        if !PATCHABLE.contains(&path) {
            return Err(invalid(
                "addition",
                path,
                &format!("Cannot find property '{path}' or it cannot be patched."),
            ));
        }
        let obj = current.as_object_mut().expect("record is an object");
        match kind.to_ascii_lowercase().as_str() {
            "replace" | "add" => {
                let Some(v) = op.get("value") else {
                    return Err(invalid("addition", path, "A value is required."));
                };
                obj.insert(path.to_string(), v.clone());
            }
            "remove" => {
                obj.insert(path.to_string(), Value::Null);
            }
            other => {
                return Err(bad_request(&format!(
                    "Unsupported patch operation '{other}'."
                )))
            }
        }
    }
    Ok(current)
}

fn num_field(b: &Value, key: &str) -> Result<f64, Response> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0)),
        Some(_) => Err(invalid(
            "addition",
            key,
            &format!("{key} must be a number."),
        )),
    }
}

fn date_field(b: &Value, key: &str) -> Result<Option<DateTime<Utc>>, Response> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => conditions::parse_datetime(s)
            .map(|d| Some(trunc(d)))
            .ok_or_else(|| invalid("addition", key, &format!("{key} is not a valid date."))),
        Some(_) => Err(invalid(
            "addition",
            key,
            &format!("{key} must be a date string."),
        )),
    }
}

/// Validates a (full) addition document, as POST/PUT send it.
fn addition_from_json(
    inst: &Instance,
    b: &Value,
    mode: Write,
    now: DateTime<Utc>,
) -> Result<CwAddition, Response> {
    let product = match b.get("product") {
        Some(Value::Object(p)) => {
            let by_id = p.get("id").and_then(Value::as_i64);
            let by_ident = p.get("identifier").and_then(Value::as_str);
            let found = match (by_id, by_ident) {
                (Some(id), _) => inst.products.get(id),
                (None, Some(ident)) => inst
                    .products
                    .rows
                    .values()
                    .map(|r| &r.rec)
                    .find(|c| c.identifier.eq_ignore_ascii_case(ident)),
                (None, None) => None,
            };
            match found {
                Some(c) => c.clone(),
                None => {
                    return Err(invalid(
                        "addition",
                        "product",
                        "The product was not found in the catalog.",
                    ))
                }
            }
        }
        _ => {
            return Err(invalid(
                "addition",
                "product",
                "The product field is required.",
            ))
        }
    };
    let bill = match b.get("billCustomer").and_then(Value::as_str) {
        Some(s @ ("Billable" | "DoNotBill" | "NoCharge")) => s.to_string(),
        Some(other) => {
            return Err(invalid(
                "addition",
                "billCustomer",
                &format!("'{other}' is not a valid billCustomer (Billable, DoNotBill, NoCharge)."),
            ))
        }
        None => {
            return Err(invalid(
                "addition",
                "billCustomer",
                "The billCustomer field is required.",
            ))
        }
    };
    let effective_date = match (date_field(b, "effectiveDate")?, mode) {
        (None, Write::Post) => Some(trunc(
            now.date_naive()
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc(),
        )),
        (d, _) => d,
    };
    let description = match b.get("description") {
        Some(Value::String(s)) => s.clone(),
        _ => product.description.clone(),
    };
    Ok(CwAddition {
        id: 0,
        product: CwProductRef {
            id: product.id,
            identifier: product.identifier.clone(),
        },
        quantity: num_field(b, "quantity")?,
        less_included: num_field(b, "lessIncluded")?,
        unit_price: num_field(b, "unitPrice")?,
        bill_customer: bill,
        effective_date,
        cancelled_date: date_field(b, "cancelledDate")?,
        agreement_id: 0,
        description,
        invoice_description: b
            .get("invoiceDescription")
            .and_then(Value::as_str)
            .map(str::to_string),
        info: CwInfo::default(),
    })
}

crate::common::fake_handle!(ConnectWiseFake);
