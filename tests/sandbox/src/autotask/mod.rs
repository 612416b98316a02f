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
//!   `GET /{Entity}/{id}` → `{item}`; a well-formed id naming no record (or a record of another
//!   parent) → **200 `{"item": null}`** (the spec lists 200/401/403 only; the public client
//!   reads a null item as "not found"); a non-numeric id → 404 (UNCONFIRMED). Ops `eq noteq gt gte lt lte beginsWith endsWith
//!   contains exist notExist in notIn`, groups `and`/`or` with nested `items`, top-level
//!   filters ANDed, `udf:true` filters a UDF by name. Field and op names are case-insensitive,
//!   string comparisons too (SQL collation). `maxRecords` 1..=500 (default 500, also the page
//!   size). Responses `{items, pageDetails:{count, requestCount, prevPageUrl, nextPageUrl}}`,
//!   `nextPageUrl` null on the last page. Errors are `{"errors":[…]}`, mostly HTTP 500
//!   (validation errors included), as the notes describe.
//! * **Writes** return 200 `{itemId}`. PATCH is sparse and takes the `id` in the body
//!   (`PATCH /V1.0/Companies`, as in the Swagger). Child entities are written through the
//!   parent: `POST/PATCH /Contracts/{parentId}/Services`, `POST/PATCH
//!   /Companies/{parentId}/Contacts` (root `Contacts` is read-only, as in the Swagger),
//!   `POST /Contracts/{parentId}/ServiceAdjustments` (or `POST /ContractServiceAdjustments`);
//!   root `ContractServices` and `ContractServiceUnits` are read-only. `POST/PATCH /Tickets`
//!   (query/get too): UNCONFIRMED required fields `title`, `companyID`, `status`, `priority`
//!   (the swagger names none); invented picklists status (1 New, 5 Complete, 8 In Progress),
//!   priority (1 High, 2 Medium, 3 Low, 4 Critical), queueID (5 Client Portal, 8 Level I).
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
//! * Datetimes are emitted as real answers carry them: UTC with milliseconds and `Z`
//!   (`2026-11-22T10:00:00.123Z`; the fake clock's milliseconds are kept). UNCONFIRMED: date-only
//!   fields (`startDate`, …) use the same form (`2026-11-01T00:00:00.000Z`). Input accepts that
//!   form, zone-less UTC (`2026-11-22T00:00:00`), RFC 3339 offsets and plain dates.
//! * **Limits**: requests are counted in a rolling 60-minute window (fake clock) against
//!   `externalRequestThreshold` (default 10,000, [`AutotaskFake::set_threshold`]), per
//!   database (= per fake, shared by all API users and integrations, as the vendor doc says;
//!   with one API user this is the same as counting per user);
//!   `GET /V1.0/ThresholdInformation` → `{externalRequestThreshold,
//!   requestThresholdTimeframe: 60, currentTimeframeRequestCount}`. Thread limit: at most 3
//!   requests in flight per (integration code, entity endpoint); see [`Stats`](crate::Stats)'s
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
//!
//! ## Layout
//! `records.rs` wire records and `add_*` inputs · `entities.rs` entities and field metadata ·
//! `state.rs` users, threshold window, picklists, UDFs and the entity tables · `units.rs` the
//! recurring-service model · `handle.rs` the test-control methods of [`AutotaskFake`] ·
//! `routes.rs` router, path canonicalisation, thread-limit key · `auth.rs` authentication,
//! threshold and the request wrapper · `reads.rs` entity information, records, queries ·
//! `query.rs` query models and filters · `writes.rs` creates, updates, adjustments ·
//! `errors.rs` error bodies.

mod auth;
mod entities;
mod errors;
mod handle;
mod people_writes;
mod query;
mod reads;
mod records;
mod routes;
mod state;
#[cfg(test)]
mod tests;
mod units;
mod writes;

use std::{io, net::SocketAddr, sync::Arc};

pub use records::{
    at_format, AtBillingCode, AtCompany, AtContact, AtContract, AtContractService,
    AtContractServiceAdjustment, AtContractServiceUnit, AtNewCompany, AtNewContract, AtService,
    AtTicket, AtUdf,
};

use crate::common::{self, Common, EndpointLimit, Server};
use state::AtState;

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

/// Handle to a running fake Autotask server (cheap to clone).
#[derive(Clone)]
pub struct AutotaskFake {
    inner: Arc<Server<AtState>>,
}

impl AutotaskFake {
    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<AutotaskFake> {
        let (listener, local) = common::bind(addr).await?;
        let common = Common::with_endpoint_limit(
            errors::fault_response,
            EndpointLimit {
                key: routes::endpoint_key,
                max: THREAD_LIMIT,
                reject: errors::thread_limit_response,
            },
        );
        let inner = Server::new(local, common, AtState::new());
        let (vendor, list) = routes::router(inner.clone());
        let _ = inner.common.routes.set(list);
        let vendor = vendor.route_layer(axum::middleware::from_fn_with_state(
            inner.common.clone(),
            common::track,
        ));
        let app = common::control_router(inner.common.clone())
            .fallback_service(vendor)
            .layer(axum::middleware::from_fn(routes::canonicalize));
        common::spawn(listener, app);
        Ok(AutotaskFake { inner })
    }
}

common::fake_handle!(AutotaskFake);
