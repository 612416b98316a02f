//! Fake Autotask PSA REST API v1.0 (`/ATServicesRest/V1.0/…`).
//!
//! One fake = one Autotask database (tenant) in one zone. Sources: `specs/PSA-API-NOTES.md` §2,
//! the vendor Swagger (`autotask-rest.swagger.json`) and the vendor's entity pages for
//! ContractServices / ContractServiceUnits / ContractServiceAdjustments.
//!
//! ## Faithful
//! * **Zone discovery** without credentials: `GET /atservicesrest/v1.0/zoneInformation?user=`
//!   → `{zoneName, url: "<fake>/ATServicesRest/", webUrl, ci}`; unknown user → 500
//!   `{"errors":["Zone information could not be determined"]}`.
//!   `GET /atservicesrest/versioninformation` → `{"apiVersions":["1.0"]}`. Paths are
//!   case-insensitive everywhere (`/ATServicesRest/V1.0/Companies/query` ==
//!   `/atservicesrest/v1.0/companies/QUERY`); header names are case-insensitive (HTTP).
//! * **Auth** on every other call: `ApiIntegrationCode`, `UserName`, `Secret` headers. Unknown
//!   (or missing) integration code → 500 `{"errors":["IntegrationCode is invalid."]}`.
//! * **Query**: `POST /{Entity}/query` `{maxRecords, includeFields, filter}` and
//!   `GET /{Entity}/query?search={json}`; `…/query/count` (GET or POST) → `{queryCount}`;
//!   `GET /{Entity}/{id}` → `{item}`. Ops `eq noteq gt gte lt lte beginsWith endsWith
//!   contains exist notExist in notIn`, groups `and`/`or` with nested `items`, top-level
//!   filters ANDed, `udf:true` filters a UDF by name. Field and op names are case-insensitive,
//!   string comparisons too (SQL collation). `maxRecords` 1..=500 (default 500, also the page
//!   size). Responses `{items, pageDetails:{count, requestCount, prevPageUrl, nextPageUrl}}`,
//!   `nextPageUrl` null on the last page. Errors are `{"errors":[…]}`, mostly HTTP 500
//!   (validation errors included), as the notes describe.
//! * **Writes** return 200 `{itemId}`. PATCH is sparse and takes the `id` in the body
//!   (`PATCH /V1.0/Companies`, as in the Swagger). Child entities are written through the
//!   parent: `POST/PATCH /Contracts/{parentId}/Services`,
//!   `POST /Contracts/{parentId}/ServiceAdjustments` (or `POST /ContractServiceAdjustments`);
//!   root `ContractServices` and `ContractServiceUnits` are read-only.
//! * **Recurring-service model** (vendor entity pages): a ContractService can only be added to
//!   a Recurring Service contract (`contractType` 7); it carries **no quantity**. Units live in
//!   `ContractServiceUnits`, one per billing period (by the contract's `contractPeriodType`,
//!   periods aligned on the contract `startDate`). A ContractServiceAdjustment (`unitChange`
//!   delta, `effectiveDate`) changes the units from the effective date on: when the date is
//!   not a period start, the covering period is split and a new ContractServiceUnit starts at
//!   the effective date. An adjustment naming a `serviceID` the contract does not have yet
//!   creates the ContractService (vendor doc). On update a ContractService only accepts
//!   `unitPrice` and `invoiceDescription` changes (vendor doc: "all fields are Read-Only
//!   except for adjustedPrice and invoiceDescription").
//! * `effectiveDate` is taken as a date without time-zone conversion (the date part as sent).
//! * **entityInformation**: `GET /{Entity}/entityInformation` (`{info}`), `/fields`
//!   (`{fields}` with `picklistValues` `{value:"7", label, isDefaultValue, sortOrder,
//!   parentValue, isActive, isSystem}` for picklists) and `/userDefinedFields`. Picklist values
//!   are per fake (tenant): Companies.companyType (1 Customer, 2 Lead, 3 Prospect, 4 Dead,
//!   6 Cancellation, 7 Vendor, 8 Partner), Contracts.status (0 Inactive, 1 Active),
//!   Contracts.contractType (1 Time and Materials, 3 Fixed Price, 4 Block Hours, 6 Retainer,
//!   7 Recurring Service, 8 Per Ticket), Contracts.contractCategory (1 Standard, 2 Managed
//!   Services), Contracts.contractPeriodType and Services.periodType (1 Monthly, 2 Quarterly,
//!   3 Semi-Annual, 4 Yearly). Handle methods that take a label add unknown labels as new
//!   values (like a tenant admin would); HTTP writes must use existing values.
//! * Every record carries every UDF defined for its entity (`userDefinedFields:[{name,
//!   value}]`, `value` null when unset).
//! * Datetimes are emitted zone-less UTC with whole seconds (`2026-11-22T00:00:00`); input
//!   accepts that form, fractional seconds, RFC 3339 (`…Z`, offsets) and plain dates.
//! * **Limits**: requests are counted in a rolling 60-minute window (fake clock) against
//!   `externalRequestThreshold` (default 10,000, [`AutotaskFake::set_threshold`]), per
//!   database (= per fake, shared by all API users and integrations, as the vendor doc says;
//!   with one API user this is the same as counting per user);
//!   `GET /V1.0/ThresholdInformation` → `{externalRequestThreshold,
//!   requestThresholdTimeframe: 60, currentTimeframeRequestCount}`. Thread limit: at most 3
//!   requests in flight per (integration code, entity endpoint); see [`Stats`]'s
//!   `max_in_flight_per_endpoint` (key `"{code} {Entity}"`, child paths count as the child
//!   entity, e.g. `/Contracts/1/Services` → `ContractServices`). Zone and version requests are
//!   exempt from both.
//! * Faults, stats, clock and the `/_sandbox/*` control API work as on the other fakes.
//!   Paths are canonicalised before routing, so `Fault::path_contains` and `Stats::by_route`
//!   see the canonical spelling (e.g. `POST /ATServicesRest/V1.0/Companies/query`). POST
//!   queries are not counted as `writes`.
//!
//! ## UNCONFIRMED behaviour and the choices made
//! * Wrong `UserName`/`Secret` → **401** `{"errors":["Authentication failed: …"]}`; checked
//!   after the integration code.
//! * A user without API access (not an API-only user) → **403** `{"errors":["… not an API
//!   user …"]}`.
//! * An integration code that is registered but is not the one assigned to the API user →
//!   500 `IntegrationCode is invalid.` (API users are bound to one tracking identifier).
//! * Threshold reached (≥ 100 %) → **429** `{"errors":["API request threshold exceeded …"]}`
//!   with `Retry-After` (seconds until the oldest counted request leaves the window). Blocked
//!   requests, requests failing authentication, requests answered by an injected `Status`
//!   fault and `ThresholdInformation` calls are not counted; `ThresholdInformation` is never
//!   blocked. The 50 % latency throttling is not modelled.
//! * Thread limit exceeded → **429** `{"errors":["Thread limit exceeded …"]}`, answered at
//!   once (it does not wait), no `Retry-After`.
//! * `nextPageUrl`/`prevPageUrl` = `{origin}{path}?search={query json}&paging={json}` where
//!   `paging` is `{"afterId":N}` (results are ordered by `id`, a page = the next `maxRecords`
//!   matches with `id > afterId`). Following it works with GET, with POST repeating the
//!   original body (the body wins over `search`), and with POST without a body.
//!   `prevPageUrl` is null on the first page.
//! * A query with an empty `filter` returns everything (no error).
//! * Filters on null values: only `notExist` matches a null (or empty-string) value;
//!   `noteq`/`notIn` do not match nulls (SQL semantics).
//! * `in`/`notIn` with more than 500 values, or an `or` group with more than 500 items → 500.
//!   Unknown field or UDF name in a filter or `includeFields` → 500 naming it; unknown `op`,
//!   a value of the wrong type, `maxRecords` outside 1..=500 → 500.
//! * `includeFields` returns only the named fields (case-insensitive; `userDefinedFields` or
//!   a UDF name selects UDFs); as the vendor doc requires, `id` must be among them when more
//!   than 500 records match (else 500). `nextPageUrl` needs no `id` in the items.
//! * `GET /{Entity}/{id}` for a missing id → 404 `{"errors":[…]}`.
//! * Unknown JSON properties in write bodies are ignored (.NET model binding); read-only
//!   properties (`id`, `createDate`, `last…`) are ignored too, except on ContractServices
//!   updates where changing a read-only field is an error.
//! * Required on create: Companies `companyName`, `companyType`; Contracts `companyID`,
//!   `contractName`, `contractType`, `startDate`, `endDate` (`status` defaults to 1,
//!   `contractPeriodType` to Monthly); Services `name`, `periodType` (`unitPrice` defaults to
//!   0); ContractServices `serviceID` (prices default to the service's); adjustments
//!   `contractID` (root only), `unitChange` (integer), `effectiveDate`, and
//!   `contractServiceID` or `serviceID`. A ContractService created over HTTP starts with 0
//!   units. Units may not become negative (500).
//! * ContractServiceUnits: created for the period containing today (clamped into the
//!   contract's dates) through the contract end (at most 120 periods); earlier or later
//!   periods are created when an adjustment's effective date needs them. A split period ends the day before the
//!   adjustment's effective date (the vendor text says "the effective date"; non-overlapping
//!   ranges were chosen). `price`/`cost` are the contract service's unit price/cost
//!   (`adjustedUnitPrice`/`adjustedUnitCost` of an adjustment override them from its
//!   effective date). `approveAndPostDate` is always null (posting is not modelled).
//!
//! ## Simplified / not modelled
//! * No owner company (id 0), no resources, billing codes, contacts writes, PUT (full
//!   replace), DELETE, webhooks, `ImpersonationResourceId`, UDF definition entities; changing
//!   contract dates does not re-shape existing ContractServiceUnits.
//! * Ids: Companies from 174, Contacts 30,682,000, Services 2,900,000, Contracts 29,684,000,
//!   ContractServices 51,000,000, ContractServiceUnits 72,000,000, ContractServiceAdjustments
//!   83,000,000 (distinct ranges expose id mix-ups).
//! * The default contract UDF `PAYG` (text) exists from the start; define more with
//!   [`AutotaskFake::define_contract_udf`] / [`AutotaskFake::define_contract_picklist_udf`].

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    middleware::Next,
    response::Response,
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Timelike, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::common::{self, lock, Common, EndpointLimit, Table};

/// Requests allowed in flight per (integration code, entity endpoint).
pub const THREAD_LIMIT: usize = 3;
/// Default `externalRequestThreshold` (requests per rolling 60 minutes).
pub const DEFAULT_THRESHOLD: u64 = 10_000;
/// Largest `maxRecords` (and the page size).
pub const MAX_RECORDS: usize = 500;
/// Most values in one `in`/`notIn` condition (and items in one `or` group).
pub const MAX_CONDITIONS: usize = 500;
/// Zone name reported by zone discovery.
pub const ZONE_NAME: &str = "Sandbox Zone (psa-sandbox)";
/// `contractType` value of a Recurring Service contract.
pub const RECURRING_SERVICE: i64 = 7;

const WINDOW_MINUTES: i64 = 60;
const MAX_PERIODS: usize = 120;
const DEFAULT_OWNER_RESOURCE_ID: i64 = 29_682_885;
const DEFAULT_BILLING_CODE_ID: i64 = 29_682_801;

// ---------------------------------------------------------------------------------------------
// Wire datetime format: "2026-11-22T00:00:00"
// ---------------------------------------------------------------------------------------------

/// Formats a datetime the way Autotask returns it (zone-less UTC, whole seconds).
pub fn at_format(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn trunc(d: DateTime<Utc>) -> DateTime<Utc> {
    d.with_nanosecond(0).unwrap_or(d)
}

fn at_midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    crate::conditions::parse_datetime(s.trim()).map(trunc)
}

mod at_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::at_format(d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_dt(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}")))
    }
}

mod at_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::at_format(d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_dt(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}"))),
        }
    }
}

/// Emits integral numbers as JSON integers (Autotask's `units`/`unitChange` are int32).
mod int_num {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

fn num_json(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Records (field names as in the vendor Swagger)
// ---------------------------------------------------------------------------------------------

/// One entry of `userDefinedFields`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtUdf {
    pub name: String,
    pub value: Option<String>,
}

/// `Companies` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtCompany {
    pub id: i64,
    pub company_name: String,
    pub company_number: Option<String>,
    /// Picklist value (e.g. 1 = Customer).
    pub company_type: i64,
    pub is_active: bool,
    #[serde(rename = "parentCompanyID")]
    pub parent_company_id: Option<i64>,
    #[serde(rename = "ownerResourceID")]
    pub owner_resource_id: i64,
    pub phone: Option<String>,
    #[serde(with = "at_time")]
    pub create_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub last_tracked_modified_date_time: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `Contacts` record (made for a company's primary contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContact {
    pub id: i64,
    #[serde(rename = "companyID")]
    pub company_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email_address: Option<String>,
    /// 1 = active, 0 = inactive (an integer in the vendor schema).
    pub is_active: i64,
    pub primary_contact: bool,
    #[serde(with = "at_time")]
    pub last_modified_date: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `Contracts` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContract {
    pub id: i64,
    #[serde(rename = "companyID")]
    pub company_id: i64,
    pub contract_name: String,
    pub contract_number: Option<String>,
    /// Picklist value (7 = Recurring Service).
    pub contract_type: i64,
    pub contract_category: Option<i64>,
    /// Picklist value (1 = Monthly); sets the ContractServiceUnits period length.
    pub contract_period_type: i64,
    /// Picklist value (1 = Active, 0 = Inactive).
    pub status: i64,
    #[serde(with = "at_time")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub end_date: DateTime<Utc>,
    pub is_default_contract: bool,
    pub description: Option<String>,
    #[serde(with = "at_time")]
    pub last_modified_date_time: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `ContractServices` record (no quantity: see [`AtContractServiceUnit`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractService {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "serviceID")]
    pub service_id: i64,
    pub unit_price: f64,
    pub unit_cost: Option<f64>,
    pub invoice_description: Option<String>,
    pub internal_description: Option<String>,
}

/// `ContractServiceUnits` record: the units of one contract service for one date range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractServiceUnit {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "contractServiceID")]
    pub contract_service_id: i64,
    #[serde(rename = "serviceID")]
    pub service_id: i64,
    #[serde(with = "int_num")]
    pub units: f64,
    pub price: f64,
    pub cost: Option<f64>,
    #[serde(with = "at_time")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub end_date: DateTime<Utc>,
    #[serde(with = "at_time_opt")]
    pub approve_and_post_date: Option<DateTime<Utc>>,
}

/// `ContractServiceAdjustments` record (create-only over HTTP; kept for inspection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractServiceAdjustment {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "contractServiceID")]
    pub contract_service_id: Option<i64>,
    #[serde(rename = "serviceID")]
    pub service_id: Option<i64>,
    #[serde(with = "int_num")]
    pub unit_change: f64,
    #[serde(with = "at_time")]
    pub effective_date: DateTime<Utc>,
    pub adjusted_unit_price: Option<f64>,
    pub adjusted_unit_cost: Option<f64>,
    pub allow_repeat_service: bool,
}

/// `Services` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtService {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub invoice_description: Option<String>,
    pub unit_price: f64,
    pub unit_cost: Option<f64>,
    /// Picklist value (1 = Monthly).
    pub period_type: i64,
    #[serde(rename = "billingCodeID")]
    pub billing_code_id: Option<i64>,
    pub is_active: bool,
    pub sku: Option<String>,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    #[serde(with = "at_time")]
    pub last_modified_date: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `BillingCodes` record (an allocation code; read only here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtBillingCode {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    /// Picklist value (2 = Recurring Contract Service, the kind services use).
    pub use_type: i64,
}

/// Input of [`AutotaskFake::add_company`].
#[derive(Debug, Clone, Default)]
pub struct AtNewCompany {
    pub name: String,
    /// companyType label (e.g. "Customer", the default).
    pub company_type: Option<String>,
    /// `(first name, last name, email)`; creates a Contacts record with `primaryContact`.
    pub primary_contact: Option<(String, String, String)>,
}

/// Input of [`AutotaskFake::add_contract`] (a Recurring Service contract, monthly periods).
#[derive(Debug, Clone, Default)]
pub struct AtNewContract {
    pub company_id: i64,
    pub name: String,
    /// `None` = first day of the fake clock's month.
    pub start_date: Option<DateTime<Utc>>,
    /// `None` = start + 12 months - 1 day.
    pub end_date: Option<DateTime<Utc>>,
    /// `status` 1 (Active) when true, 0 (Inactive) otherwise.
    pub status_active: bool,
    /// `(UDF name, value)`; names not yet defined are defined (text UDFs).
    pub udfs: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// Entities and field metadata
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entity {
    Companies,
    Contacts,
    Contracts,
    ContractServices,
    ContractServiceUnits,
    ContractServiceAdjustments,
    Services,
    BillingCodes,
}

const ALL_ENTITIES: [Entity; 8] = [
    Entity::Companies,
    Entity::Contacts,
    Entity::Contracts,
    Entity::ContractServices,
    Entity::ContractServiceUnits,
    Entity::ContractServiceAdjustments,
    Entity::Services,
    Entity::BillingCodes,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Long,
    Str,
    Bool,
    Date,
    Double,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Int => "integer",
            Ty::Long => "long",
            Ty::Str => "string",
            Ty::Bool => "boolean",
            Ty::Date => "datetime",
            Ty::Double => "double",
        }
    }
}

const RO: u8 = 1;
const REQ: u8 = 2;
const PICK: u8 = 4;

struct FieldDef {
    name: &'static str,
    ty: Ty,
    flags: u8,
    reference: Option<&'static str>,
    length: u32,
}

impl FieldDef {
    fn read_only(&self) -> bool {
        self.flags & RO != 0
    }
    fn required(&self) -> bool {
        self.flags & REQ != 0
    }
    fn picklist(&self) -> bool {
        self.flags & PICK != 0
    }
}

const fn fd(name: &'static str, ty: Ty, flags: u8) -> FieldDef {
    FieldDef {
        name,
        ty,
        flags,
        reference: None,
        length: if matches!(ty, Ty::Str) { 100 } else { 0 },
    }
}

const fn fr(name: &'static str, flags: u8, reference: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty: Ty::Int,
        flags,
        reference: Some(reference),
        length: 0,
    }
}

const COMPANY_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("companyName", Ty::Str, REQ),
    fd("companyNumber", Ty::Str, 0),
    fd("companyType", Ty::Int, REQ | PICK),
    fd("isActive", Ty::Bool, 0),
    fr("parentCompanyID", 0, "Company"),
    fr("ownerResourceID", 0, "Resource"),
    fd("phone", Ty::Str, 0),
    fd("createDate", Ty::Date, RO),
    fd("lastTrackedModifiedDateTime", Ty::Date, RO),
];

const CONTACT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("companyID", REQ, "Company"),
    fd("firstName", Ty::Str, REQ),
    fd("lastName", Ty::Str, REQ),
    fd("emailAddress", Ty::Str, 0),
    fd("isActive", Ty::Int, REQ),
    fd("primaryContact", Ty::Bool, 0),
    fd("lastModifiedDate", Ty::Date, RO),
];

const CONTRACT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("companyID", REQ, "Company"),
    fd("contractName", Ty::Str, REQ),
    fd("contractNumber", Ty::Str, 0),
    fd("contractType", Ty::Int, REQ | PICK),
    fd("contractCategory", Ty::Int, PICK),
    fd("contractPeriodType", Ty::Int, PICK),
    fd("status", Ty::Int, REQ | PICK),
    fd("startDate", Ty::Date, REQ),
    fd("endDate", Ty::Date, REQ),
    fd("isDefaultContract", Ty::Bool, 0),
    fd("description", Ty::Str, 0),
    fd("lastModifiedDateTime", Ty::Date, RO),
];

const CONTRACT_SERVICE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", REQ, "Contract"),
    fr("serviceID", REQ, "Service"),
    fd("unitPrice", Ty::Double, 0),
    fd("unitCost", Ty::Double, 0),
    fd("invoiceDescription", Ty::Str, 0),
    fd("internalDescription", Ty::Str, 0),
];

const CONTRACT_SERVICE_UNIT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", RO, "Contract"),
    fr("contractServiceID", RO, "ContractService"),
    fr("serviceID", RO, "Service"),
    fd("units", Ty::Int, RO),
    fd("price", Ty::Double, RO),
    fd("cost", Ty::Double, RO),
    fd("startDate", Ty::Date, RO),
    fd("endDate", Ty::Date, RO),
    fd("approveAndPostDate", Ty::Date, RO),
];

const CONTRACT_SERVICE_ADJUSTMENT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", REQ, "Contract"),
    fr("contractServiceID", 0, "ContractService"),
    fr("serviceID", 0, "Service"),
    fd("unitChange", Ty::Int, REQ),
    fd("effectiveDate", Ty::Date, REQ),
    fd("adjustedUnitPrice", Ty::Double, 0),
    fd("adjustedUnitCost", Ty::Double, 0),
    fd("allowRepeatService", Ty::Bool, 0),
];

const BILLING_CODE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("name", Ty::Str, RO),
    fd("description", Ty::Str, RO),
    fd("isActive", Ty::Bool, RO),
    fd("useType", Ty::Int, RO | PICK),
];

const SERVICE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("name", Ty::Str, REQ),
    fd("description", Ty::Str, 0),
    fd("invoiceDescription", Ty::Str, 0),
    fd("unitPrice", Ty::Double, 0),
    fd("unitCost", Ty::Double, 0),
    fd("periodType", Ty::Int, REQ | PICK),
    fr("billingCodeID", 0, "BillingCode"),
    fd("isActive", Ty::Bool, 0),
    fd("sku", Ty::Str, 0),
    fd("externalID", Ty::Str, 0),
    fd("lastModifiedDate", Ty::Date, RO),
];

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Companies => "Companies",
            Entity::Contacts => "Contacts",
            Entity::Contracts => "Contracts",
            Entity::ContractServices => "ContractServices",
            Entity::ContractServiceUnits => "ContractServiceUnits",
            Entity::ContractServiceAdjustments => "ContractServiceAdjustments",
            Entity::Services => "Services",
            Entity::BillingCodes => "BillingCodes",
        }
    }
    /// Singular name (entityInformation `name`, error messages).
    fn singular(self) -> &'static str {
        match self {
            Entity::Companies => "Company",
            Entity::Contacts => "Contact",
            Entity::Contracts => "Contract",
            Entity::ContractServices => "ContractService",
            Entity::ContractServiceUnits => "ContractServiceUnit",
            Entity::ContractServiceAdjustments => "ContractServiceAdjustment",
            Entity::Services => "Service",
            Entity::BillingCodes => "BillingCode",
        }
    }
    fn fields(self) -> &'static [FieldDef] {
        match self {
            Entity::Companies => COMPANY_FIELDS,
            Entity::Contacts => CONTACT_FIELDS,
            Entity::Contracts => CONTRACT_FIELDS,
            Entity::ContractServices => CONTRACT_SERVICE_FIELDS,
            Entity::ContractServiceUnits => CONTRACT_SERVICE_UNIT_FIELDS,
            Entity::ContractServiceAdjustments => CONTRACT_SERVICE_ADJUSTMENT_FIELDS,
            Entity::Services => SERVICE_FIELDS,
            Entity::BillingCodes => BILLING_CODE_FIELDS,
        }
    }
    fn field(self, name: &str) -> Option<&'static FieldDef> {
        self.fields()
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
    fn has_udfs(self) -> bool {
        matches!(
            self,
            Entity::Companies | Entity::Contacts | Entity::Contracts | Entity::Services
        )
    }
    fn can_query(self) -> bool {
        self != Entity::ContractServiceAdjustments
    }
    fn can_create(self) -> bool {
        matches!(
            self,
            Entity::Companies
                | Entity::Contracts
                | Entity::ContractServices
                | Entity::ContractServiceAdjustments
                | Entity::Services
        )
    }
    fn can_update(self) -> bool {
        matches!(
            self,
            Entity::Companies | Entity::Contracts | Entity::ContractServices | Entity::Services
        )
    }
}

/// Canonical spellings of the path segments the fake serves (paths are case-insensitive).
const CANONICAL_SEGMENTS: &[&str] = &[
    "V1.0",
    "VersionInformation",
    "ZoneInformation",
    "ThresholdInformation",
    "Companies",
    "Contacts",
    "Contracts",
    "ContractServices",
    "ContractServiceUnits",
    "ContractServiceAdjustments",
    "Services",
    "BillingCodes",
    "ServiceAdjustments",
    "ServiceUnits",
    "query",
    "count",
    "entityInformation",
    "fields",
    "userDefinedFields",
];

/// The canonical form of an `/ATServicesRest/…` path (`None` for other paths).
fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if !first.eq_ignore_ascii_case("ATServicesRest") {
        return None;
    }
    let mut out = String::from("/ATServicesRest");
    if rest.len() > first.len() {
        for seg in tail.split('/') {
            out.push('/');
            match CANONICAL_SEGMENTS
                .iter()
                .find(|c| c.eq_ignore_ascii_case(seg))
            {
                Some(c) => out.push_str(c),
                None => out.push_str(seg),
            }
        }
    }
    (out != path).then_some(out)
}

/// Rewrites `/atservicesrest/v1.0/companies/QUERY` to the canonical case before routing.
async fn canonicalize(mut req: Request, next: Next) -> Response {
    if let Some(p) = canonical_path(req.uri().path()) {
        let pq = match req.uri().query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(v) = pq.parse() {
            parts.path_and_query = Some(v);
            if let Ok(u) = Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    next.run(req).await
}

/// Thread-limit key `"{ApiIntegrationCode} {Entity}"` (zone/version requests are exempt).
fn endpoint_key(req: &Request) -> Option<String> {
    let segs: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    if segs.len() < 3
        || !segs[0].eq_ignore_ascii_case("ATServicesRest")
        || !segs[1].eq_ignore_ascii_case("V1.0")
        || segs[2].eq_ignore_ascii_case("ZoneInformation")
    {
        return None;
    }
    let parent = segs[2];
    let child = (segs.len() >= 5 && segs[3].parse::<i64>().is_ok()).then(|| segs[4]);
    let entity = match child {
        Some(c) if parent.eq_ignore_ascii_case("Contracts") => {
            if c.eq_ignore_ascii_case("Services") {
                "ContractServices".to_string()
            } else if c.eq_ignore_ascii_case("ServiceAdjustments") {
                "ContractServiceAdjustments".to_string()
            } else if c.eq_ignore_ascii_case("ServiceUnits") {
                "ContractServiceUnits".to_string()
            } else {
                format!("Contract{c}")
            }
        }
        Some(c) => c.to_string(),
        None => parent.to_string(),
    };
    let code = req
        .headers()
        .get("apiintegrationcode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    Some(format!("{code} {entity}"))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn at_error(status: StatusCode, message: &str) -> Response {
    common::json_response(status, &json!({ "errors": [message] }))
}

fn err500(message: &str) -> Response {
    at_error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

fn with_retry_after(mut resp: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    resp
}

/// Error response for `Status` faults.
fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let message = match status.as_u16() {
        429 => "Too many requests. Please retry later.".to_string(),
        500 => "An unexpected error has occurred. Please try again.".to_string(),
        401 => "Authentication failed: the UserName or Secret is incorrect.".to_string(),
        403 => "Access denied.".to_string(),
        404 => "The requested resource does not exist.".to_string(),
        503 => "The service is temporarily unavailable.".to_string(),
        _ => format!(
            "Injected fault: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
    };
    with_retry_after(at_error(status, &message), retry_after)
}

fn thread_limit_response(key: &str) -> Response {
    let entity = key.rsplit(' ').next().unwrap_or(key);
    at_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Thread limit exceeded: at most {THREAD_LIMIT} concurrent requests are allowed per \
             integration and entity ({entity}). Retry when a previous request has completed."
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct PickVal {
    value: i64,
    label: String,
    is_active: bool,
}

#[derive(Debug, Clone)]
struct UdfDef {
    name: String,
    /// `(value, label)` for picklist UDFs.
    picklist: Option<Vec<(String, String)>>,
}

struct ApiUser {
    username: String,
    secret: String,
    integration_code: Option<String>,
    api_access: bool,
}

struct AtState {
    /// By lower-cased username.
    users: BTreeMap<String, ApiUser>,
    codes: BTreeSet<String>,
    threshold: u64,
    window: VecDeque<DateTime<Utc>>,
    picklists: BTreeMap<(Entity, &'static str), Vec<PickVal>>,
    udfs: BTreeMap<Entity, Vec<UdfDef>>,
    companies: Table<AtCompany>,
    contacts: Table<AtContact>,
    contracts: Table<AtContract>,
    contract_services: Table<AtContractService>,
    units: Table<AtContractServiceUnit>,
    adjustments: Table<AtContractServiceAdjustment>,
    services: Table<AtService>,
    billing_codes: Table<AtBillingCode>,
    /// (contract id, contract service id)
    contract_index: BTreeSet<(i64, i64)>,
    /// (contract service id, unit id)
    unit_index: BTreeSet<(i64, i64)>,
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
    fn new() -> Self {
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
            contracts: Table::new(29_684_000),
            contract_services: Table::new(51_000_000),
            units: Table::new(72_000_000),
            adjustments: Table::new(83_000_000),
            services: Table::new(2_900_000),
            billing_codes: {
                let mut t = Table::new(DEFAULT_BILLING_CODE_ID);
                let id = t.alloc();
                t.put(
                    id,
                    AtBillingCode {
                        id,
                        name: "Recurring Services".into(),
                        description: Some("Default allocation code for services".into()),
                        is_active: true,
                        use_type: 2,
                    },
                );
                t
            },
            contract_index: BTreeSet::new(),
            unit_index: BTreeSet::new(),
        }
    }

    // --- threshold ---------------------------------------------------------------------------

    fn prune(&mut self, now: DateTime<Utc>) {
        let cutoff = now - Duration::minutes(WINDOW_MINUTES);
        while self.window.front().is_some_and(|t| *t <= cutoff) {
            self.window.pop_front();
        }
    }

    fn used(&mut self, now: DateTime<Utc>) -> u64 {
        self.prune(now);
        self.window.len() as u64
    }

    // --- picklists & UDFs --------------------------------------------------------------------

    fn picklist(&self, e: Entity, field: &str) -> Option<&Vec<PickVal>> {
        self.picklists
            .iter()
            .find(|((pe, pf), _)| *pe == e && pf.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
    }

    fn pick_valid(&self, e: Entity, field: &str, value: i64) -> bool {
        self.picklist(e, field)
            .is_some_and(|l| l.iter().any(|p| p.value == value && p.is_active))
    }

    fn pick_label(&self, e: Entity, field: &str, value: i64) -> Option<String> {
        self.picklist(e, field)?
            .iter()
            .find(|p| p.value == value)
            .map(|p| p.label.clone())
    }

    /// The value of a label, adding it to the picklist when unknown.
    fn pick_lookup(&mut self, e: Entity, field: &'static str, label: &str) -> i64 {
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

    fn udf_defs(&self, e: Entity) -> &[UdfDef] {
        self.udfs.get(&e).map(Vec::as_slice).unwrap_or(&[])
    }

    fn udf_def(&self, e: Entity, name: &str) -> Option<&UdfDef> {
        self.udf_defs(e)
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// Defines a UDF (idempotent) and adds it (value null) to every record of the entity.
    fn define_udf(&mut self, e: Entity, def: UdfDef) {
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
        fn add<T: Serialize>(t: &mut Table<T>, udfs: impl Fn(&mut T) -> &mut Vec<AtUdf>, n: &str) {
            let ids: Vec<i64> = t.rows.keys().copied().collect();
            for id in ids {
                t.modify(id, |r| {
                    udfs(r).push(AtUdf {
                        name: n.to_string(),
                        value: None,
                    })
                });
            }
        }
        match e {
            Entity::Companies => add(&mut self.companies, |r| &mut r.user_defined_fields, &name),
            Entity::Contacts => add(&mut self.contacts, |r| &mut r.user_defined_fields, &name),
            Entity::Contracts => add(&mut self.contracts, |r| &mut r.user_defined_fields, &name),
            Entity::Services => add(&mut self.services, |r| &mut r.user_defined_fields, &name),
            _ => {}
        }
    }

    fn remove_udf(&mut self, e: Entity, name: &str) {
        if let Some(list) = self.udfs.get_mut(&e) {
            list.retain(|u| !u.name.eq_ignore_ascii_case(name));
        }
        fn rm<T: Serialize>(t: &mut Table<T>, udfs: impl Fn(&mut T) -> &mut Vec<AtUdf>, n: &str) {
            let ids: Vec<i64> = t.rows.keys().copied().collect();
            for id in ids {
                t.modify(id, |r| udfs(r).retain(|u| !u.name.eq_ignore_ascii_case(n)));
            }
        }
        match e {
            Entity::Companies => rm(&mut self.companies, |r| &mut r.user_defined_fields, name),
            Entity::Contacts => rm(&mut self.contacts, |r| &mut r.user_defined_fields, name),
            Entity::Contracts => rm(&mut self.contracts, |r| &mut r.user_defined_fields, name),
            Entity::Services => rm(&mut self.services, |r| &mut r.user_defined_fields, name),
            _ => {}
        }
    }

    fn blank_udfs(&self, e: Entity) -> Vec<AtUdf> {
        self.udf_defs(e)
            .iter()
            .map(|u| AtUdf {
                name: u.name.clone(),
                value: None,
            })
            .collect()
    }

    // --- rows ----------------------------------------------------------------------------------

    fn json_range(
        &self,
        e: Entity,
        range: (std::ops::Bound<i64>, std::ops::Bound<i64>),
        rev: bool,
    ) -> Box<dyn Iterator<Item = (i64, &Value)> + '_> {
        fn it<T>(
            t: &Table<T>,
            range: (std::ops::Bound<i64>, std::ops::Bound<i64>),
            rev: bool,
        ) -> Box<dyn Iterator<Item = (i64, &Value)> + '_> {
            let r = t.rows.range(range).map(|(id, r)| (*id, &r.json));
            if rev {
                Box::new(r.rev())
            } else {
                Box::new(r)
            }
        }
        match e {
            Entity::Companies => it(&self.companies, range, rev),
            Entity::Contacts => it(&self.contacts, range, rev),
            Entity::Contracts => it(&self.contracts, range, rev),
            Entity::ContractServices => it(&self.contract_services, range, rev),
            Entity::ContractServiceUnits => it(&self.units, range, rev),
            Entity::ContractServiceAdjustments => it(&self.adjustments, range, rev),
            Entity::Services => it(&self.services, range, rev),
            Entity::BillingCodes => it(&self.billing_codes, range, rev),
        }
    }

    fn json_row(&self, e: Entity, id: i64) -> Option<&Value> {
        match e {
            Entity::Companies => self.companies.rows.get(&id).map(|r| &r.json),
            Entity::Contacts => self.contacts.rows.get(&id).map(|r| &r.json),
            Entity::Contracts => self.contracts.rows.get(&id).map(|r| &r.json),
            Entity::ContractServices => self.contract_services.rows.get(&id).map(|r| &r.json),
            Entity::ContractServiceUnits => self.units.rows.get(&id).map(|r| &r.json),
            Entity::ContractServiceAdjustments => self.adjustments.rows.get(&id).map(|r| &r.json),
            Entity::Services => self.services.rows.get(&id).map(|r| &r.json),
            Entity::BillingCodes => self.billing_codes.rows.get(&id).map(|r| &r.json),
        }
    }

    // --- recurring-service model -------------------------------------------------------------

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
    fn period(&self, c: &AtContract, k: u32) -> Option<(NaiveDate, NaiveDate)> {
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
    fn period_index(&self, c: &AtContract, d: NaiveDate) -> u32 {
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
    fn unit_records(&self, cs_id: i64) -> Vec<&AtContractServiceUnit> {
        let mut v: Vec<&AtContractServiceUnit> = self
            .unit_index
            .range((cs_id, i64::MIN)..=(cs_id, i64::MAX))
            .filter_map(|(_, id)| self.units.get(*id))
            .collect();
        v.sort_by_key(|u| u.start_date);
        v
    }

    fn add_unit(&mut self, cs: &AtContractService, units: f64, start: NaiveDate, end: NaiveDate) {
        let id = self.units.alloc();
        self.units.put(
            id,
            AtContractServiceUnit {
                id,
                contract_id: cs.contract_id,
                contract_service_id: cs.id,
                service_id: cs.service_id,
                units,
                price: cs.unit_price,
                cost: cs.unit_cost,
                start_date: at_midnight(start),
                end_date: at_midnight(end),
                approve_and_post_date: None,
            },
        );
        self.unit_index.insert((cs.id, id));
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
    fn create_contract_service(
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
            .contract_index
            .range((contract_id, i64::MIN)..=(contract_id, i64::MAX))
            .any(|(_, cs)| {
                self.contract_services
                    .get(*cs)
                    .is_some_and(|x| x.service_id == service_id)
            })
        {
            return Err(format!(
                "Service {service_id} is already associated with contract {contract_id}."
            ));
        }
        let id = self.contract_services.alloc();
        let cs = AtContractService {
            id,
            contract_id,
            service_id,
            unit_price: unit_price.unwrap_or(s.unit_price),
            unit_cost: unit_cost.or(s.unit_cost),
            invoice_description: invoice_description.or(s.invoice_description.clone()),
            internal_description,
        };
        self.contract_services.put(id, cs.clone());
        self.contract_index.insert((contract_id, id));
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
    fn adjust(
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
                    .contract_index
                    .range((contract_id, i64::MIN)..=(contract_id, i64::MAX))
                    .map(|(_, cs)| *cs)
                    .find(|cs| {
                        self.contract_services
                            .get(*cs)
                            .is_some_and(|x| x.service_id == sid)
                    });
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
            let id = self.units.alloc();
            let mut rec = AtContractServiceUnit {
                id,
                contract_id: cs.contract_id,
                contract_service_id: cs.id,
                service_id: cs.service_id,
                units: covering.units + delta,
                price: covering.price,
                cost: covering.cost,
                start_date: at_midnight(effective),
                end_date: at_midnight(old_end),
                approve_and_post_date: None,
            };
            set_prices(&mut rec);
            self.units.put(id, rec);
            self.unit_index.insert((cs_id, id));
        }
        for u in later {
            self.units.modify(u.id, |u| {
                u.units += delta;
                set_prices(u);
            });
        }
        let cs = self.contract_services.get(cs_id).cloned().expect("exists");
        let id = self.adjustments.alloc();
        self.adjustments.put(
            id,
            AtContractServiceAdjustment {
                id,
                contract_id,
                contract_service_id: Some(cs_id),
                service_id: Some(cs.service_id),
                unit_change: delta,
                effective_date: at_midnight(effective),
                adjusted_unit_price: adjusted_price,
                adjusted_unit_cost: adjusted_cost,
                allow_repeat_service: allow_repeat,
            },
        );
        Ok(id)
    }

    /// Units of a contract service on `day` (the covering record; before the first → the
    /// first's, after the last → the last's; 0 when there are none).
    fn units_on(&self, cs_id: i64, day: NaiveDate) -> f64 {
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

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

struct AtInner {
    url: String,
    common: Arc<Common>,
    state: Mutex<AtState>,
}

/// Handle to a running fake Autotask server (cheap to clone).
#[derive(Clone)]
pub struct AutotaskFake {
    inner: Arc<AtInner>,
}

impl AutotaskFake {
    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<AutotaskFake> {
        let (listener, local) = common::bind(addr).await?;
        let inner = Arc::new(AtInner {
            url: format!("http://{local}"),
            common: Common::with_endpoint_limit(
                fault_response,
                EndpointLimit {
                    key: endpoint_key,
                    max: THREAD_LIMIT,
                    reject: thread_limit_response,
                },
            ),
            state: Mutex::new(AtState::new()),
        });
        let vendor = router(inner.clone()).route_layer(axum::middleware::from_fn_with_state(
            inner.common.clone(),
            common::track,
        ));
        let app = common::control_router(inner.common.clone())
            .fallback_service(vendor)
            .layer(axum::middleware::from_fn(canonicalize));
        common::spawn(listener, app);
        Ok(AutotaskFake { inner })
    }

    fn now(&self) -> DateTime<Utc> {
        trunc(self.inner.common.clock.now())
    }

    fn with<R>(&self, f: impl FnOnce(&mut AtState, DateTime<Utc>) -> R) -> R {
        let now = self.now();
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
            let id = st.companies.alloc();
            let udfs = st.blank_udfs(Entity::Companies);
            st.companies.put(
                id,
                AtCompany {
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
                },
            );
            if let Some((first, last, email)) = c.primary_contact {
                let cid = st.contacts.alloc();
                let udfs = st.blank_udfs(Entity::Contacts);
                st.contacts.put(
                    cid,
                    AtContact {
                        id: cid,
                        company_id: id,
                        first_name: first,
                        last_name: last,
                        email_address: Some(email),
                        is_active: 1,
                        primary_contact: true,
                        last_modified_date: now,
                        user_defined_fields: udfs,
                    },
                );
            }
            id
        })
    }

    /// Changes a company; bumps `lastTrackedModifiedDateTime`.
    pub fn update_company(&self, id: i64, f: impl FnOnce(&mut AtCompany)) {
        self.with(|st, now| {
            let ok = st.companies.modify(id, |c| {
                f(c);
                c.last_tracked_modified_date_time = now;
            });
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
            let id = st.services.alloc();
            let udfs = st.blank_udfs(Entity::Services);
            st.services.put(
                id,
                AtService {
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
                },
            );
            id
        })
    }

    /// Adds an active allocation code (billing code of use type Recurring Contract Service).
    pub fn add_billing_code(&self, name: &str) -> i64 {
        self.with(|st, _| {
            let id = st.billing_codes.alloc();
            st.billing_codes.put(
                id,
                AtBillingCode {
                    id,
                    name: name.to_string(),
                    description: None,
                    is_active: true,
                    use_type: 2,
                },
            );
            id
        })
    }

    /// The services with this name (any case).
    pub fn services_named(&self, name: &str) -> Vec<AtService> {
        self.with(|st, _| {
            st.services
                .rows
                .values()
                .filter(|r| r.rec.name.eq_ignore_ascii_case(name))
                .map(|r| r.rec.clone())
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
            let start = c.start_date.map(trunc).unwrap_or_else(|| {
                at_midnight(now.date_naive().with_day(1).expect("first of month"))
            });
            let end = c.end_date.map(trunc).unwrap_or_else(|| {
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
            let id = st.contracts.alloc();
            st.contracts.put(
                id,
                AtContract {
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
                },
            );
            id
        })
    }

    /// Changes a contract; bumps `lastModifiedDateTime`.
    pub fn update_contract(&self, id: i64, f: impl FnOnce(&mut AtContract)) {
        self.with(|st, now| {
            let ok = st.contracts.modify(id, |c| {
                f(c);
                c.last_modified_date_time = now;
            });
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
            st.contract_index
                .range((contract_id, i64::MIN)..=(contract_id, i64::MAX))
                .filter_map(|(_, id)| {
                    let mut v = st.contract_services.rows.get(id)?.json.clone();
                    v["units"] = num_json(st.units_on(*id, now.date_naive()));
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
                .rows
                .values()
                .filter(|r| r.rec.contract_id == contract_id)
                .map(|r| r.rec.clone())
                .collect()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: routing
// ---------------------------------------------------------------------------------------------

type At = Arc<AtInner>;

const V1: &str = "/ATServicesRest/V1.0";

fn router(inner: At) -> Router {
    let mut r: Router<At> = Router::new()
        .route(&format!("{V1}/ZoneInformation"), get(zone_information))
        .route(
            "/ATServicesRest/VersionInformation",
            get(version_information),
        )
        .route(
            &format!("{V1}/ThresholdInformation"),
            get(threshold_information),
        );
    for e in ALL_ENTITIES {
        let base = format!("{V1}/{}", e.name());
        r = r
            .route(
                &format!("{base}/entityInformation"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.entity_info(e, &h) }),
            )
            .route(
                &format!("{base}/entityInformation/fields"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.field_info(e, &h) }),
            )
            .route(
                &format!("{base}/entityInformation/userDefinedFields"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.udf_info(e, &h) }),
            );
        if !e.can_query() {
            continue;
        }
        for count in [false, true] {
            let path = if count {
                format!("{base}/query/count")
            } else {
                format!("{base}/query")
            };
            r = r.route(
                &path,
                get(
                    move |State(s): State<At>, h: HeaderMap, uri: Uri| async move {
                        s.query(e, None, &h, &uri, &[], count)
                    },
                )
                .post(
                    move |State(s): State<At>, h: HeaderMap, uri: Uri, body: Bytes| async move {
                        s.query(e, None, &h, &uri, &body, count)
                    },
                ),
            );
        }
        r = r.route(
            &format!("{base}/{{id}}"),
            get(
                move |State(s): State<At>, h: HeaderMap, Path(id): Path<String>| async move {
                    s.get_one(e, None, &h, &id)
                },
            ),
        );
    }
    // Root writes.
    for e in [Entity::Companies, Entity::Contracts, Entity::Services] {
        r = r.route(
            &format!("{V1}/{}", e.name()),
            post(
                move |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                    s.write(e, None, false, &h, &body)
                },
            )
            .patch(
                move |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                    s.write(e, None, true, &h, &body)
                },
            ),
        );
    }
    r = r.route(
        &format!("{V1}/ContractServiceAdjustments"),
        post(
            |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                s.adjustment(None, &h, &body)
            },
        ),
    );
    // Children of Contracts and Companies.
    for (parent, child, e) in [
        ("Contracts", "Services", Entity::ContractServices),
        ("Contracts", "ServiceUnits", Entity::ContractServiceUnits),
        ("Companies", "Contacts", Entity::Contacts),
    ] {
        let base = format!("{V1}/{parent}/{{id}}/{child}");
        let scope_field = if parent == "Contracts" {
            "contractID"
        } else {
            "companyID"
        };
        let mut list = get(
            move |State(s): State<At>, h: HeaderMap, uri: Uri, Path(p): Path<String>| async move {
                s.child_list(e, scope_field, &p, &h, &uri)
            },
        );
        if e == Entity::ContractServices {
            list = list
                .post(
                    |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                        s.write(Entity::ContractServices, Some(&p), false, &h, &body)
                    },
                )
                .patch(
                    |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                        s.write(Entity::ContractServices, Some(&p), true, &h, &body)
                    },
                );
        }
        r =
            r.route(&base, list).route(
                &format!("{base}/{{childId}}"),
                get(
                    move |State(s): State<At>,
                          h: HeaderMap,
                          Path((p, id)): Path<(String, String)>| async move {
                        s.get_one(e, Some((scope_field, &p)), &h, &id)
                    },
                ),
            );
    }
    r = r.route(
        &format!("{V1}/Contracts/{{id}}/ServiceAdjustments"),
        post(
            |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                s.adjustment(Some(&p), &h, &body)
            },
        ),
    );
    r.fallback(|uri: Uri| async move {
        at_error(
            StatusCode::NOT_FOUND,
            &format!(
                "The requested resource does not exist or is not supported by this entity: {}",
                uri.path()
            ),
        )
    })
    .with_state(inner)
}

/// Query parameters (keys case-insensitive).
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn from_uri(uri: &Uri) -> Self {
        QueryParams(
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

async fn zone_information(State(s): State<At>, uri: Uri) -> Response {
    let q = QueryParams::from_uri(&uri);
    let known = q
        .get("user")
        .is_some_and(|u| lock(&s.state).users.contains_key(&u.trim().to_lowercase()));
    if !known {
        return err500("Zone information could not be determined");
    }
    common::json_response(
        StatusCode::OK,
        &json!({
            "zoneName": ZONE_NAME,
            "url": format!("{}/ATServicesRest/", s.url),
            "webUrl": format!("{}/", s.url),
            "ci": 4242,
        }),
    )
}

async fn version_information() -> Response {
    common::json_response(StatusCode::OK, &json!({ "apiVersions": ["1.0"] }))
}

async fn threshold_information(State(s): State<At>, h: HeaderMap) -> Response {
    s.api(&h, false, |st, ctx| {
        let used = st.used(ctx.now);
        Ok(json!({
            "externalRequestThreshold": st.threshold,
            "requestThresholdTimeframe": WINDOW_MINUTES,
            "currentTimeframeRequestCount": used,
        }))
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP: auth, threshold and the request wrapper
// ---------------------------------------------------------------------------------------------

struct Ctx {
    now: DateTime<Utc>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn authenticate(st: &AtState, h: &HeaderMap) -> Result<(), Response> {
    let invalid_code = || err500("IntegrationCode is invalid.");
    let code = header_str(h, "apiintegrationcode").ok_or_else(invalid_code)?;
    if !st.codes.contains(code) {
        return Err(invalid_code());
    }
    let bad = || {
        at_error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed: the UserName or Secret is incorrect.",
        )
    };
    let user_name = header_str(h, "username").ok_or_else(bad)?;
    let secret = h
        .get("secret")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad)?;
    let user = st.users.get(&user_name.to_lowercase()).ok_or_else(bad)?;
    if user.secret != secret {
        return Err(bad());
    }
    if !user.api_access {
        return Err(at_error(
            StatusCode::FORBIDDEN,
            &format!(
                "User '{}' is not an API user: only API-only users (security level 'API User \
                 (system)') with an API tracking identifier can access the REST API.",
                user.username
            ),
        ));
    }
    if user.integration_code.as_deref() != Some(code) {
        return Err(invalid_code());
    }
    Ok(())
}

impl AtInner {
    fn today(&self) -> NaiveDate {
        self.common.clock.now().date_naive()
    }

    /// Authenticates, applies the request threshold (when `counted`), and runs `f` under the
    /// state lock; the JSON body is serialized after the lock is released.
    fn api(
        &self,
        h: &HeaderMap,
        counted: bool,
        f: impl FnOnce(&mut AtState, &Ctx) -> Result<Value, Response>,
    ) -> Response {
        let ctx = Ctx {
            now: trunc(self.common.clock.now()),
        };
        let out = {
            let mut st = lock(&self.state);
            match authenticate(&st, h) {
                Err(r) => Err(r),
                Ok(()) => {
                    let mut blocked = None;
                    if counted {
                        let used = st.used(ctx.now);
                        if used >= st.threshold {
                            let retry = st
                                .window
                                .front()
                                .map(|t| {
                                    (*t + Duration::minutes(WINDOW_MINUTES) - ctx.now)
                                        .num_seconds()
                                        .max(1) as u64
                                })
                                .unwrap_or(1);
                            blocked = Some(with_retry_after(
                                at_error(
                                    StatusCode::TOO_MANY_REQUESTS,
                                    &format!(
                                        "API request threshold exceeded: {used} of {} requests \
                                         used in the last {WINDOW_MINUTES} minutes. Requests are \
                                         blocked until usage falls below the threshold.",
                                        st.threshold
                                    ),
                                ),
                                Some(retry),
                            ));
                        } else {
                            st.window.push_back(ctx.now);
                        }
                    }
                    match blocked {
                        Some(r) => Err(r),
                        None => f(&mut st, &ctx),
                    }
                }
            }
        };
        match out {
            Ok(v) => common::raw_json(StatusCode::OK, serde_json::to_vec(&v).expect("serializes")),
            Err(r) => r,
        }
    }

    fn entity_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |_, _| {
            Ok(json!({"info": {
                "name": e.singular(),
                "canCreate": e.can_create(),
                "canDelete": false,
                "canQuery": e.can_query(),
                "canUpdate": e.can_update(),
                "userAccessForCreate": if e.can_create() { "All" } else { "None" },
                "userAccessForDelete": "None",
                "userAccessForQuery": if e.can_query() { "All" } else { "None" },
                "userAccessForUpdate": if e.can_update() { "All" } else { "None" },
                "hasUserDefinedFields": e.has_udfs(),
                "supportsWebhookCallouts": matches!(e, Entity::Companies | Entity::Contacts),
            }}))
        })
    }

    fn field_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |st, _| {
            let fields: Vec<Value> = e
                .fields()
                .iter()
                .map(|f| {
                    let picklist = if f.picklist() {
                        st.picklist(e, f.name)
                            .map(|l| {
                                l.iter()
                                    .enumerate()
                                    .map(|(i, p)| {
                                        json!({
                                            "value": p.value.to_string(),
                                            "label": p.label,
                                            "isDefaultValue": false,
                                            "sortOrder": i,
                                            "parentValue": "",
                                            "isActive": p.is_active,
                                            "isSystem": true,
                                        })
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .map(Value::from)
                            .unwrap_or(Value::Null)
                    } else {
                        Value::Null
                    };
                    json!({
                        "name": f.name,
                        "dataType": f.ty.name(),
                        "length": f.length,
                        "isRequired": f.required(),
                        "isReadOnly": f.read_only(),
                        "isQueryable": true,
                        "isReference": f.reference.is_some(),
                        "referenceEntityType": f.reference.unwrap_or(""),
                        "isPickList": f.picklist(),
                        "picklistValues": picklist,
                        "picklistParentValueField": "",
                        "isSupportedWebhookField": false,
                    })
                })
                .collect();
            Ok(json!({ "fields": fields }))
        })
    }

    fn udf_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |st, _| {
            let fields: Vec<Value> = st
                .udf_defs(e)
                .iter()
                .map(|u| {
                    let picklist = u.picklist.as_ref().map(|l| {
                        l.iter()
                            .enumerate()
                            .map(|(i, (v, label))| {
                                json!({
                                    "value": v, "label": label, "isDefaultValue": false,
                                    "sortOrder": i, "parentValue": "", "isActive": true,
                                    "isSystem": false,
                                })
                            })
                            .collect::<Vec<_>>()
                    });
                    json!({
                        "name": u.name,
                        "label": u.name,
                        "type": "string",
                        "length": 8000,
                        "description": "",
                        "isRequired": false,
                        "isReadOnly": false,
                        "isQueryable": true,
                        "isReference": false,
                        "referenceEntityType": "",
                        "isPickList": picklist.is_some(),
                        "picklistValues": picklist,
                        "picklistParentValueField": "",
                        "defaultValue": "",
                        "isSupportedWebhookField": false,
                    })
                })
                .collect();
            Ok(json!({ "fields": fields }))
        })
    }

    fn get_one(
        &self,
        e: Entity,
        scope: Option<(&'static str, &str)>,
        h: &HeaderMap,
        id: &str,
    ) -> Response {
        self.api(h, true, |st, _| {
            let not_found = || {
                at_error(
                    StatusCode::NOT_FOUND,
                    &format!("{} with id {} was not found.", e.singular(), id.trim()),
                )
            };
            let n = id.trim().parse::<i64>().map_err(|_| not_found())?;
            let v = st.json_row(e, n).ok_or_else(not_found)?;
            if let Some((field, parent)) = scope {
                if v.get(field).and_then(Value::as_i64) != parent.trim().parse::<i64>().ok() {
                    return Err(not_found());
                }
            }
            Ok(json!({ "item": v }))
        })
    }

    fn child_list(
        &self,
        e: Entity,
        scope_field: &'static str,
        parent: &str,
        h: &HeaderMap,
        uri: &Uri,
    ) -> Response {
        let Ok(parent_id) = parent.trim().parse::<i64>() else {
            return at_error(
                StatusCode::NOT_FOUND,
                &format!("Parent with id {parent} was not found."),
            );
        };
        self.run_query(e, Some((scope_field, parent_id)), h, uri, None, false)
    }

    fn query(
        &self,
        e: Entity,
        scope: Option<(&'static str, i64)>,
        h: &HeaderMap,
        uri: &Uri,
        body: &[u8],
        count: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let model: Value = if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) | Err(_) => {
                    return err500("The request body must be a JSON query object.");
                }
            }
        } else if let Some(search) = q.get("search") {
            match serde_json::from_str::<Value>(search) {
                Ok(v @ Value::Object(_)) => v,
                _ => return err500("The search parameter must be a JSON query object."),
            }
        } else {
            return err500("A query (request body or search parameter) is required.");
        };
        self.run_query(e, scope, h, uri, Some(model), count)
    }

    fn run_query(
        &self,
        e: Entity,
        scope: Option<(&'static str, i64)>,
        h: &HeaderMap,
        uri: &Uri,
        model: Option<Value>,
        count: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let after: Option<i64> = match q.get("paging") {
            None => None,
            Some(p) => match serde_json::from_str::<Value>(p)
                .ok()
                .and_then(|v| get_ci(&v, "afterId").and_then(Value::as_i64))
            {
                Some(a) => Some(a),
                None => return err500("The paging parameter is invalid."),
            },
        };
        let link_base = format!("{}{}", self.url, uri.path());
        self.api(h, true, |st, _| {
            let model_v = model.clone().unwrap_or_else(|| json!({}));
            let parsed = parse_query(st, e, &model_v).map_err(|m| err500(&m))?;
            let mut cond = parsed.cond;
            if let Some((field, id)) = scope {
                let def = e.field(field).expect("scope field");
                cond = Cond::All(vec![
                    Cond::Leaf {
                        target: Target::Field(def.name),
                        op: Op::Eq,
                        vals: vec![Val::Num(id as f64)],
                    },
                    cond,
                ]);
            }
            if count {
                let n = st
                    .json_range(
                        e,
                        (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
                        false,
                    )
                    .filter(|(_, v)| cond.matches(v))
                    .count();
                return Ok(json!({ "queryCount": n }));
            }
            let page_size = parsed.max_records;
            let lower = match after {
                Some(a) => std::ops::Bound::Excluded(a),
                None => std::ops::Bound::Unbounded,
            };
            let mut it = st
                .json_range(e, (lower, std::ops::Bound::Unbounded), false)
                .filter(|(_, v)| cond.matches(v));
            let page: Vec<(i64, &Value)> = it.by_ref().take(page_size).collect();
            let more = it.next().is_some();
            if more
                && !parsed.include.is_empty()
                && !parsed.include.contains(&"id")
                && page.len() + 1 + it.count() > MAX_RECORDS
            {
                return Err(err500(
                    "IncludeFields must include id when the query returns more than 500 records.",
                ));
            }
            let search = model.as_ref().map(|m| m.to_string());
            let link = |after: Option<i64>| {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                if let Some(s) = &search {
                    ser.append_pair("search", s);
                }
                if let Some(a) = after {
                    ser.append_pair("paging", &json!({ "afterId": a }).to_string());
                }
                let qs = ser.finish();
                if qs.is_empty() {
                    link_base.clone()
                } else {
                    format!("{link_base}?{qs}")
                }
            };
            let next = match (more, page.last()) {
                (true, Some((last, _))) => Value::from(link(Some(*last))),
                _ => Value::Null,
            };
            let prev = match after {
                None => Value::Null,
                Some(a) => {
                    // The previous page: the `page_size` matches with id <= a; it starts
                    // after the match before those (or at the beginning).
                    let mut back = st
                        .json_range(
                            e,
                            (std::ops::Bound::Unbounded, std::ops::Bound::Included(a)),
                            true,
                        )
                        .filter(|(_, v)| cond.matches(v))
                        .map(|(id, _)| id)
                        .skip(page_size);
                    Value::from(link(back.next()))
                }
            };
            let items: Vec<Value> = page
                .iter()
                .map(|(_, v)| project(v, &parsed.include, &parsed.include_udfs))
                .collect();
            Ok(json!({
                "items": items,
                "pageDetails": {
                    "count": items.len(),
                    "requestCount": page_size,
                    "prevPageUrl": prev,
                    "nextPageUrl": next,
                },
            }))
        })
    }

    fn write(
        &self,
        e: Entity,
        parent: Option<&str>,
        update: bool,
        h: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let today = self.today();
        let parent_id = match parent.map(|p| p.trim().parse::<i64>()) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return at_error(StatusCode::NOT_FOUND, "Parent Contract was not found.")
            }
        };
        let body: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => return err500("The request body must be a JSON object."),
        };
        self.api(h, true, |st, ctx| {
            let id = match e {
                Entity::Companies => write_company(st, &body, update, ctx.now),
                Entity::Contracts => write_contract(st, &body, update, ctx.now),
                Entity::Services => write_service(st, &body, update, ctx.now),
                Entity::ContractServices => {
                    let parent_id = parent_id.expect("child route");
                    if st.contracts.get(parent_id).is_none() {
                        return Err(at_error(
                            StatusCode::NOT_FOUND,
                            &format!("Contract with id {parent_id} was not found."),
                        ));
                    }
                    write_contract_service(st, parent_id, &body, update, today)
                }
                _ => Err(format!("{} cannot be written.", e.name())),
            }
            .map_err(|m| err500(&m))?;
            Ok(json!({ "itemId": id }))
        })
    }

    fn adjustment(&self, parent: Option<&str>, h: &HeaderMap, body: &[u8]) -> Response {
        let parent_id = match parent.map(|p| p.trim().parse::<i64>()) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return at_error(StatusCode::NOT_FOUND, "Parent Contract was not found.")
            }
        };
        let body: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => return err500("The request body must be a JSON object."),
        };
        self.api(h, true, |st, _| {
            if let Some(p) = parent_id {
                if st.contracts.get(p).is_none() {
                    return Err(at_error(
                        StatusCode::NOT_FOUND,
                        &format!("Contract with id {p} was not found."),
                    ));
                }
            }
            let e = Entity::ContractServiceAdjustments;
            let field = |name: &str| -> Result<Value, String> {
                let def = e.field(name).expect("field");
                match get_ci_map(&body, name) {
                    None => Ok(Value::Null),
                    Some(v) => coerce(def, v),
                }
            };
            let contract_id = match (parent_id, field("contractID").map_err(|m| err500(&m))?) {
                (Some(p), Value::Null) => p,
                (Some(p), v) if v.as_i64() == Some(p) => p,
                (Some(p), _) => {
                    return Err(err500(&format!(
                        "contractID does not match the parent contract {p}."
                    )))
                }
                (None, v) => v
                    .as_i64()
                    .ok_or_else(|| err500("Field contractID is required."))?,
            };
            let unit_change = field("unitChange").map_err(|m| err500(&m))?;
            let Some(unit_change) = unit_change.as_f64() else {
                return Err(err500("Field unitChange is required."));
            };
            let effective = match get_ci_map(&body, "effectiveDate") {
                Some(Value::String(s)) => effective_date(s)
                    .ok_or_else(|| err500(&format!("effectiveDate '{s}' is not a valid date.")))?,
                Some(Value::Null) | None => return Err(err500("Field effectiveDate is required.")),
                Some(other) => {
                    return Err(err500(&format!(
                        "effectiveDate {other} is not a valid date."
                    )))
                }
            };
            let cs_id = field("contractServiceID").map_err(|m| err500(&m))?.as_i64();
            let service_id = field("serviceID").map_err(|m| err500(&m))?.as_i64();
            let price = field("adjustedUnitPrice").map_err(|m| err500(&m))?.as_f64();
            let cost = field("adjustedUnitCost").map_err(|m| err500(&m))?.as_f64();
            let repeat = field("allowRepeatService")
                .map_err(|m| err500(&m))?
                .as_bool()
                .unwrap_or(false);
            let id = st
                .adjust(
                    contract_id,
                    cs_id,
                    service_id,
                    unit_change,
                    effective,
                    price,
                    cost,
                    repeat,
                )
                .map_err(|m| err500(&m))?;
            Ok(json!({ "itemId": id }))
        })
    }
}

/// `effectiveDate` is a date: the date part as sent, without time-zone conversion.
fn effective_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let date_part = s.split(['T', ' ']).next().unwrap_or(s);
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_dt(s).map(|d| d.date_naive()))
}

// ---------------------------------------------------------------------------------------------
// Queries: model, filters, projection
// ---------------------------------------------------------------------------------------------

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    get_ci_map(o, key)
}

fn get_ci_map<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

struct ParsedQuery {
    max_records: usize,
    /// Canonical field names (empty = all).
    include: Vec<&'static str>,
    /// UDF names selected by includeFields (`None` = all UDFs when any are included).
    include_udfs: Option<Vec<String>>,
    cond: Cond,
}

fn parse_query(st: &AtState, e: Entity, m: &Value) -> Result<ParsedQuery, String> {
    let max_records = match get_ci(m, "maxRecords") {
        None | Some(Value::Null) => MAX_RECORDS,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_RECORDS as i64).contains(&n) => n as usize,
            _ => {
                return Err(format!(
                    "MaxRecords must be between 1 and {MAX_RECORDS} (got {v})."
                ))
            }
        },
    };
    let mut include = Vec::new();
    let mut include_udfs: Option<Vec<String>> = None;
    match get_ci(m, "includeFields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for f in a {
                let Some(name) = f.as_str() else {
                    return Err(format!("IncludeFields: '{f}' is not a field name."));
                };
                if let Some(def) = e.field(name) {
                    include.push(def.name);
                } else if e.has_udfs() && name.eq_ignore_ascii_case("userDefinedFields") {
                    include.push("userDefinedFields");
                } else if let Some(u) = st.udf_def(e, name) {
                    include.push("userDefinedFields");
                    include_udfs
                        .get_or_insert_with(Vec::new)
                        .push(u.name.clone());
                } else {
                    return Err(format!(
                        "IncludeFields: unable to find field '{name}' in the {} entity.",
                        e.name()
                    ));
                }
            }
            if include.contains(&"userDefinedFields")
                && include_udfs.is_some()
                && a.iter().any(|f| {
                    f.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("userDefinedFields"))
                })
            {
                include_udfs = None;
            }
        }
        Some(_) => return Err("IncludeFields must be an array of field names.".into()),
    }
    let cond = match get_ci(m, "filter") {
        None | Some(Value::Null) => Cond::All(vec![]),
        Some(Value::Array(items)) => Cond::All(
            items
                .iter()
                .map(|f| compile(st, e, f))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("Filter must be an array of filter expressions.".into()),
    };
    Ok(ParsedQuery {
        max_records,
        include,
        include_udfs,
        cond,
    })
}

fn project(v: &Value, include: &[&'static str], udfs: &Option<Vec<String>>) -> Value {
    if include.is_empty() {
        return v.clone();
    }
    let mut out = Map::new();
    for f in include {
        if let Some(x) = v.get(*f) {
            let x = match (*f, udfs) {
                ("userDefinedFields", Some(names)) => Value::from(
                    x.as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|u| {
                                    u.get("name").and_then(Value::as_str).is_some_and(|n| {
                                        names.iter().any(|w| w.eq_ignore_ascii_case(n))
                                    })
                                })
                                .cloned()
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                ),
                _ => x.clone(),
            };
            out.insert(f.to_string(), x);
        }
    }
    Value::Object(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "noteq" => Op::NotEq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "beginswith" => Op::BeginsWith,
            "endswith" => Op::EndsWith,
            "contains" => Op::Contains,
            "exist" => Op::Exist,
            "notexist" => Op::NotExist,
            "in" => Op::In,
            "notin" => Op::NotIn,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Target {
    Field(&'static str),
    Udf(String),
}

#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Bool(bool),
    Date(DateTime<Utc>),
    /// Lower-cased.
    Str(String),
}

#[derive(Debug, Clone)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Leaf {
        target: Target,
        op: Op,
        vals: Vec<Val>,
    },
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_val(ty: Ty, v: &Value, field: &str) -> Result<Val, String> {
    let bad = || {
        format!(
            "Value {v} is not valid for field '{field}' ({}).",
            ty.name()
        )
    };
    Ok(match ty {
        Ty::Int | Ty::Long | Ty::Double => match v {
            Value::Number(n) => Val::Num(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => Val::Num(s.trim().parse::<f64>().map_err(|_| bad())?),
            Value::Bool(b) => Val::Num(if *b { 1.0 } else { 0.0 }),
            _ => return Err(bad()),
        },
        Ty::Bool => match v {
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Bool(n.as_f64() != Some(0.0)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Val::Bool(true),
                "false" | "0" => Val::Bool(false),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        },
        Ty::Date => match v {
            Value::String(s) => Val::Date(parse_dt(s).ok_or_else(bad)?),
            _ => return Err(bad()),
        },
        Ty::Str => Val::Str(scalar_text(v).ok_or_else(bad)?.to_lowercase()),
    })
}

fn compile(st: &AtState, e: Entity, f: &Value) -> Result<Cond, String> {
    if !f.is_object() {
        return Err(format!("Filter expression {f} must be an object."));
    }
    let op_s = get_ci(f, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter expression {f} has no op."))?;
    if op_s.eq_ignore_ascii_case("and") || op_s.eq_ignore_ascii_case("or") {
        let items = match get_ci(f, "items") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => {
                return Err(format!("Filter group '{op_s}' requires items."))
            }
            Some(_) => return Err(format!("Filter group '{op_s}': items must be an array.")),
        };
        if items.len() > MAX_CONDITIONS {
            return Err(format!(
                "A filter group cannot have more than {MAX_CONDITIONS} conditions ({} given).",
                items.len()
            ));
        }
        let sub = items
            .iter()
            .map(|i| compile(st, e, i))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if op_s.eq_ignore_ascii_case("and") {
            Cond::All(sub)
        } else {
            Cond::Any(sub)
        });
    }
    let op = Op::parse(op_s).ok_or_else(|| format!("Unknown filter op '{op_s}'."))?;
    let field = get_ci(f, "field")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter expression {f} has no field."))?;
    let is_udf = match get_ci(f, "udf") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let (target, ty) = if is_udf {
        let u = st.udf_def(e, field).ok_or_else(|| {
            format!(
                "Unable to find user-defined field '{field}' in the {} entity.",
                e.name()
            )
        })?;
        (Target::Udf(u.name.clone()), Ty::Str)
    } else {
        let def = e
            .field(field)
            .ok_or_else(|| format!("Unable to find field '{field}' in the {} entity.", e.name()))?;
        (Target::Field(def.name), def.ty)
    };
    let value = get_ci(f, "value");
    let vals = match op {
        Op::Exist | Op::NotExist => vec![],
        Op::In | Op::NotIn => {
            let list: Vec<&Value> = match value {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(Value::Null) | None => {
                    return Err(format!("Filter '{op_s}' on '{field}' requires a value."))
                }
                Some(v) => vec![v],
            };
            if list.len() > MAX_CONDITIONS {
                return Err(format!(
                    "The '{op_s}' filter on '{field}' has {} values; at most {MAX_CONDITIONS} \
                     conditions are allowed.",
                    list.len()
                ));
            }
            list.into_iter()
                .map(|v| to_val(ty, v, field))
                .collect::<Result<Vec<_>, _>>()?
        }
        Op::BeginsWith | Op::EndsWith | Op::Contains => {
            let v = value
                .and_then(scalar_text)
                .ok_or_else(|| format!("Filter '{op_s}' on '{field}' requires a value."))?;
            vec![Val::Str(v.to_lowercase())]
        }
        _ => {
            let v = value
                .filter(|v| !v.is_null())
                .ok_or_else(|| format!("Filter '{op_s}' on '{field}' requires a value."))?;
            vec![to_val(ty, v, field)?]
        }
    };
    Ok(Cond::Leaf { target, op, vals })
}

fn record_value<'a>(rec: &'a Value, t: &Target) -> Option<&'a Value> {
    let v = match t {
        Target::Field(name) => rec.get(*name)?,
        Target::Udf(name) => rec
            .get("userDefinedFields")?
            .as_array()?
            .iter()
            .find(|u| {
                u.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })?
            .get("value")?,
    };
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        v => Some(v),
    }
}

fn compare(rec: &Value, v: &Val) -> Option<std::cmp::Ordering> {
    match v {
        Val::Num(n) => {
            let r = match rec {
                Value::Number(x) => x.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                Value::Bool(b) => f64::from(u8::from(*b)),
                _ => return None,
            };
            r.partial_cmp(n)
        }
        Val::Bool(b) => rec.as_bool().map(|r| r.cmp(b)),
        Val::Date(d) => rec.as_str().and_then(parse_dt).map(|r| r.cmp(d)),
        Val::Str(s) => scalar_text(rec).map(|r| r.to_lowercase().cmp(s)),
    }
}

impl Cond {
    fn matches(&self, rec: &Value) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cond::All(items) => items.iter().all(|c| c.matches(rec)),
            Cond::Any(items) => items.iter().any(|c| c.matches(rec)),
            Cond::Leaf { target, op, vals } => {
                let value = record_value(rec, target);
                let Some(value) = value else {
                    return *op == Op::NotExist;
                };
                let text = || scalar_text(value).unwrap_or_default().to_lowercase();
                let pat = || match vals.first() {
                    Some(Val::Str(s)) => s.as_str(),
                    _ => "",
                };
                match op {
                    Op::Exist => true,
                    Op::NotExist => false,
                    Op::Eq => compare(value, &vals[0]) == Some(Equal),
                    Op::NotEq => compare(value, &vals[0]).is_some_and(|o| o != Equal),
                    Op::Gt => compare(value, &vals[0]) == Some(Greater),
                    Op::Gte => matches!(compare(value, &vals[0]), Some(Greater | Equal)),
                    Op::Lt => compare(value, &vals[0]) == Some(Less),
                    Op::Lte => matches!(compare(value, &vals[0]), Some(Less | Equal)),
                    Op::BeginsWith => text().starts_with(pat()),
                    Op::EndsWith => text().ends_with(pat()),
                    Op::Contains => text().contains(pat()),
                    Op::In => vals.iter().any(|v| compare(value, v) == Some(Equal)),
                    Op::NotIn => vals
                        .iter()
                        .all(|v| compare(value, v).is_some_and(|o| o != Equal)),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// Converts a JSON body value to the field's wire form (as the .NET binder would).
fn coerce(def: &FieldDef, v: &Value) -> Result<Value, String> {
    let bad = || {
        format!(
            "Unable to convert value {v} for field '{}' ({}).",
            def.name,
            def.ty.name()
        )
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match def.ty {
        Ty::Int | Ty::Long => {
            let n = match v {
                Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            if n.fract() != 0.0 {
                return Err(bad());
            }
            json!(n as i64)
        }
        Ty::Double => match v {
            Value::Number(n) => json!(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => json!(s.trim().parse::<f64>().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        Ty::Bool => match v {
            Value::Bool(b) => json!(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => json!(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => json!(false),
            Value::Number(n) if n.as_f64() == Some(1.0) => json!(true),
            Value::Number(n) if n.as_f64() == Some(0.0) => json!(false),
            _ => return Err(bad()),
        },
        Ty::Date => match v {
            Value::String(s) => json!(at_format(&parse_dt(s).ok_or_else(bad)?)),
            _ => return Err(bad()),
        },
        Ty::Str => json!(scalar_text(v).ok_or_else(bad)?),
    })
}

/// Overlays the writable body fields onto a record's JSON. Unknown and read-only properties
/// are ignored; `userDefinedFields` entries must name defined UDFs.
fn overlay(
    st: &AtState,
    e: Entity,
    json: &mut Value,
    body: &Map<String, Value>,
) -> Result<(), String> {
    let obj = json.as_object_mut().expect("record object");
    for (k, v) in body {
        if k.eq_ignore_ascii_case("userDefinedFields") && e.has_udfs() {
            let Some(list) = v.as_array() else {
                if v.is_null() {
                    continue;
                }
                return Err("userDefinedFields must be an array of {name, value}.".into());
            };
            for u in list {
                let name = get_ci(u, "name")
                    .and_then(Value::as_str)
                    .ok_or("Each userDefinedFields entry needs a name.")?;
                let def = st.udf_def(e, name).ok_or_else(|| {
                    format!(
                        "Unable to find user-defined field '{name}' in the {} entity.",
                        e.name()
                    )
                })?;
                let value = match get_ci(u, "value") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        scalar_text(v)
                            .ok_or_else(|| format!("Invalid value {v} for UDF '{name}'."))?,
                    ),
                };
                if let (Some(list), Some(val)) = (&def.picklist, &value) {
                    if !list.iter().any(|(pv, _)| pv == val) {
                        return Err(format!(
                            "'{val}' is not a valid picklist value for UDF '{}'.",
                            def.name
                        ));
                    }
                }
                let udfs = obj
                    .entry("userDefinedFields")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("array");
                match udfs.iter_mut().find(|x| {
                    x.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&def.name))
                }) {
                    Some(x) => x["value"] = Value::from(value),
                    None => udfs.push(json!({"name": def.name, "value": value})),
                }
            }
            continue;
        }
        let Some(def) = e.field(k) else { continue };
        if def.read_only() {
            continue;
        }
        obj.insert(def.name.to_string(), coerce(def, v)?);
    }
    Ok(())
}

fn check_required(e: Entity, json: &Value) -> Result<(), String> {
    for f in e.fields().iter().filter(|f| f.required() && !f.read_only()) {
        match json.get(f.name) {
            None | Some(Value::Null) => return Err(format!("Field {} is required.", f.name)),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(format!("Field {} is required.", f.name))
            }
            _ => {}
        }
    }
    Ok(())
}

fn body_id(body: &Map<String, Value>) -> Result<i64, String> {
    match get_ci_map(body, "id") {
        Some(v) => coerce(&COMPANY_FIELDS[0], v)?
            .as_i64()
            .ok_or_else(|| "Field id is required for an update.".to_string()),
        None => Err("Field id is required for an update.".into()),
    }
}

fn from_json<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("Invalid record: {e}"))
}

fn check_pick(st: &AtState, e: Entity, field: &str, value: i64) -> Result<(), String> {
    if st.pick_valid(e, field, value) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a valid value for picklist field {field}."
        ))
    }
}

/// Starting JSON of a new record (defaults), or the current JSON for an update.
fn base_json<T: Serialize>(
    table: &Table<T>,
    e: Entity,
    body: &Map<String, Value>,
    update: bool,
    fresh: impl FnOnce() -> T,
) -> Result<(Option<i64>, Value), String> {
    if update {
        let id = body_id(body)?;
        let row = table
            .rows
            .get(&id)
            .ok_or_else(|| format!("{} with id {id} was not found.", e.singular()))?;
        Ok((Some(id), row.json.clone()))
    } else {
        Ok((
            None,
            serde_json::to_value(fresh()).expect("record serializes"),
        ))
    }
}

fn write_company(
    st: &mut AtState,
    body: &Map<String, Value>,
    update: bool,
    now: DateTime<Utc>,
) -> Result<i64, String> {
    let e = Entity::Companies;
    let udfs = st.blank_udfs(e);
    let (existing, mut json) = base_json(&st.companies, e, body, update, || AtCompany {
        is_active: true,
        owner_resource_id: DEFAULT_OWNER_RESOURCE_ID,
        create_date: now,
        user_defined_fields: udfs,
        ..Default::default()
    })?;
    if !update {
        // no defaults for required fields
        json["companyName"] = Value::Null;
        json["companyType"] = Value::Null;
    }
    overlay(st, e, &mut json, body)?;
    check_required(e, &json)?;
    let mut rec: AtCompany = from_json(json)?;
    check_pick(st, e, "companyType", rec.company_type)?;
    if let Some(p) = rec.parent_company_id {
        if st.companies.get(p).is_none() || Some(p) == existing {
            return Err(format!(
                "parentCompanyID: Company {p} is not a valid parent."
            ));
        }
    }
    rec.last_tracked_modified_date_time = now;
    let id = existing.unwrap_or_else(|| st.companies.alloc());
    rec.id = id;
    st.companies.put(id, rec);
    Ok(id)
}

fn write_contract(
    st: &mut AtState,
    body: &Map<String, Value>,
    update: bool,
    now: DateTime<Utc>,
) -> Result<i64, String> {
    let e = Entity::Contracts;
    let udfs = st.blank_udfs(e);
    let (existing, mut json) = base_json(&st.contracts, e, body, update, || AtContract {
        status: 1,
        contract_period_type: 1,
        user_defined_fields: udfs,
        ..Default::default()
    })?;
    if !update {
        for f in [
            "companyID",
            "contractName",
            "contractType",
            "startDate",
            "endDate",
        ] {
            json[f] = Value::Null;
        }
    }
    overlay(st, e, &mut json, body)?;
    check_required(e, &json)?;
    let mut rec: AtContract = from_json(json)?;
    if st.companies.get(rec.company_id).is_none() {
        return Err(format!(
            "companyID: Company {} does not exist.",
            rec.company_id
        ));
    }
    check_pick(st, e, "contractType", rec.contract_type)?;
    check_pick(st, e, "status", rec.status)?;
    check_pick(st, e, "contractPeriodType", rec.contract_period_type)?;
    if let Some(c) = rec.contract_category {
        check_pick(st, e, "contractCategory", c)?;
    }
    if rec.end_date < rec.start_date {
        return Err("endDate must not be before startDate.".into());
    }
    rec.last_modified_date_time = now;
    let id = existing.unwrap_or_else(|| st.contracts.alloc());
    rec.id = id;
    st.contracts.put(id, rec);
    Ok(id)
}

fn write_service(
    st: &mut AtState,
    body: &Map<String, Value>,
    update: bool,
    now: DateTime<Utc>,
) -> Result<i64, String> {
    let e = Entity::Services;
    let udfs = st.blank_udfs(e);
    let (existing, mut json) = base_json(&st.services, e, body, update, || AtService {
        is_active: true,
        billing_code_id: Some(DEFAULT_BILLING_CODE_ID),
        user_defined_fields: udfs,
        ..Default::default()
    })?;
    if !update {
        json["name"] = Value::Null;
        json["periodType"] = Value::Null;
    }
    overlay(st, e, &mut json, body)?;
    check_required(e, &json)?;
    if json.get("unitPrice").is_none_or(Value::is_null) {
        json["unitPrice"] = json!(0.0);
    }
    let mut rec: AtService = from_json(json)?;
    check_pick(st, e, "periodType", rec.period_type)?;
    rec.last_modified_date = now;
    let id = existing.unwrap_or_else(|| st.services.alloc());
    rec.id = id;
    st.services.put(id, rec);
    Ok(id)
}

fn write_contract_service(
    st: &mut AtState,
    contract_id: i64,
    body: &Map<String, Value>,
    update: bool,
    today: NaiveDate,
) -> Result<i64, String> {
    let e = Entity::ContractServices;
    if update {
        let id = body_id(body)?;
        let current = match st.contract_services.get(id) {
            Some(cs) if cs.contract_id == contract_id => {
                st.contract_services.rows[&id].json.clone()
            }
            _ => {
                return Err(format!(
                    "ContractService with id {id} was not found on contract {contract_id}."
                ))
            }
        };
        let mut json = current.clone();
        overlay(st, e, &mut json, body)?;
        for f in e.fields().iter().filter(|f| !f.read_only()) {
            let allowed = matches!(f.name, "unitPrice" | "invoiceDescription");
            if !allowed && json.get(f.name) != current.get(f.name) {
                return Err(format!(
                    "Field {} is read-only on update (only unitPrice and invoiceDescription \
                     can be changed).",
                    f.name
                ));
            }
        }
        if json.get("unitPrice").is_none_or(Value::is_null) {
            return Err("Field unitPrice cannot be null.".into());
        }
        let rec: AtContractService = from_json(json)?;
        let price_changed = st
            .contract_services
            .get(id)
            .is_some_and(|c| c.unit_price != rec.unit_price);
        st.contract_services.put(id, rec.clone());
        if price_changed {
            // The new price applies to current and future periods.
            let ids: Vec<i64> = st
                .unit_index
                .range((id, i64::MIN)..=(id, i64::MAX))
                .map(|(_, u)| *u)
                .collect();
            for u in ids {
                st.units.modify(u, |u| {
                    if u.end_date.date_naive() >= today {
                        u.price = rec.unit_price;
                    }
                });
            }
        }
        return Ok(id);
    }
    let c = st
        .contracts
        .get(contract_id)
        .cloned()
        .ok_or_else(|| format!("Contract {contract_id} does not exist."))?;
    if c.contract_type != RECURRING_SERVICE {
        return Err(format!(
            "contractID must reference a Recurring Service type contract (contractType = \
             {RECURRING_SERVICE}); contract {contract_id} has contractType {}.",
            c.contract_type
        ));
    }
    let mut json = serde_json::to_value(AtContractService::default()).expect("serializes");
    json["serviceID"] = Value::Null;
    json["unitPrice"] = Value::Null;
    overlay(st, e, &mut json, body)?;
    if let Some(cid) = json.get("contractID").and_then(Value::as_i64) {
        if cid != 0 && cid != contract_id {
            return Err(format!(
                "contractID {cid} does not match the parent contract {contract_id}."
            ));
        }
    }
    let service_id = json
        .get("serviceID")
        .and_then(Value::as_i64)
        .ok_or("Field serviceID is required.")?;
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
    st.create_contract_service(
        contract_id,
        service_id,
        json.get("unitPrice").and_then(Value::as_f64),
        json.get("unitCost").and_then(Value::as_f64),
        text("invoiceDescription"),
        text("internalDescription"),
        0.0,
        today,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<T: Serialize + Default>() -> Vec<String> {
        let v = serde_json::to_value(T::default()).unwrap();
        v.as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "userDefinedFields")
            .cloned()
            .collect()
    }

    #[test]
    fn field_tables_match_records() {
        let check = |e: Entity, mut ks: Vec<String>| {
            let mut names: Vec<String> = e.fields().iter().map(|f| f.name.to_string()).collect();
            ks.sort();
            names.sort();
            assert_eq!(ks, names, "{}", e.name());
        };
        check(Entity::Companies, keys::<AtCompany>());
        check(Entity::Contacts, keys::<AtContact>());
        check(Entity::Contracts, keys::<AtContract>());
        check(Entity::ContractServices, keys::<AtContractService>());
        check(
            Entity::ContractServiceUnits,
            keys::<AtContractServiceUnit>(),
        );
        check(
            Entity::ContractServiceAdjustments,
            keys::<AtContractServiceAdjustment>(),
        );
        check(Entity::Services, keys::<AtService>());
        check(Entity::BillingCodes, keys::<AtBillingCode>());
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(
            canonical_path("/atservicesrest/v1.0/zoneInformation").as_deref(),
            Some("/ATServicesRest/V1.0/ZoneInformation")
        );
        assert_eq!(
            canonical_path("/atservicesrest/v1.0/contracts/12/SERVICES").as_deref(),
            Some("/ATServicesRest/V1.0/Contracts/12/Services")
        );
        assert_eq!(canonical_path("/ATServicesRest/V1.0/Companies/query"), None);
        assert_eq!(canonical_path("/_sandbox/stats"), None);
        assert_eq!(
            canonical_path("/atservicesrest/versioninformation").as_deref(),
            Some("/ATServicesRest/VersionInformation")
        );
    }

    #[test]
    fn periods_follow_the_contract_start() {
        let mut st = AtState::new();
        let c = AtContract {
            start_date: at_midnight(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()),
            end_date: at_midnight(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
            contract_period_type: 1,
            ..Default::default()
        };
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(st.period(&c, 0), Some((d(1, 15), d(2, 14))));
        assert_eq!(st.period(&c, 11), Some((d(12, 15), d(12, 31))));
        assert_eq!(st.period(&c, 12), None);
        assert_eq!(st.period_index(&c, d(2, 14)), 0);
        assert_eq!(st.period_index(&c, d(2, 15)), 1);
        assert_eq!(st.period_index(&c, d(12, 20)), 11);
        let q = st.pick_lookup(Entity::Contracts, "contractPeriodType", "Quarterly");
        let cq = AtContract {
            contract_period_type: q,
            ..c
        };
        assert_eq!(st.period(&cq, 1), Some((d(4, 15), d(7, 14))));
    }
}

crate::common::fake_handle!(AutotaskFake);
