//! # psa-sandbox — stateful fake vendor servers
//!
//! Three in-process HTTP servers that behave like the vendor APIs psa-bridge talks to, for
//! end-to-end tests, benchmarks and local runs:
//!
//! * [`ConnectWiseFake`] — ConnectWise Manage REST 3.0 (`/{codebase}apis/3.0/…`),
//! * [`AutotaskFake`] — Autotask PSA REST v1.0 (`/ATServicesRest/V1.0/…`; see [`autotask`]
//!   for what it models, its UNCONFIRMED choices and simplifications),
//! * [`PlatformFake`] — Acronis Cyber Protect Cloud Account Management API v2 (`/api/2/…`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sb = sandbox::Sandbox::start().await?;
//! sb.connectwise.add_instance("acme", "pub", "priv");
//! let partner = sb.platform.add_partner("Acme MSP");
//! println!("{} {}", sb.connectwise.url(), partner.client_id);
//! # Ok(()) }
//! ```
//!
//! Each fake listens on its own `127.0.0.1` port, serves on tokio tasks of the runtime that
//! started it, and keeps its state behind one `std::sync::Mutex` (never held across an await):
//! the PSA fakes keep every entity in a record table (`common::Table`: records by id with their
//! JSON, child links by parent id), the platform fake keeps its tenant tree in maps. Handles are
//! cheap `Clone`s. Handle methods that receive an unknown id panic (they are test-programming
//! errors); HTTP requests never panic.
//!
//! ## Layout
//! * `src/connectwise/`, `src/autotask/`, `src/platform/` — one module directory per fake, split
//!   by concern (records, state, handle methods, routes, auth, reads/queries, writes, errors);
//!   each `mod.rs` lists its files and re-exports the fake's public items.
//! * `src/common/` — what the fakes share: stats, faults (`faults.rs`), the tracking middleware
//!   and control API (`mod.rs`), serving with the kill switch (`serve.rs`), HTTP helpers and
//!   the handle boilerplate (`http.rs`), the record table (`table.rs`).
//! * `src/conditions.rs` — the ConnectWise `conditions` language.
//!
//! ## Faithful to the vendors (per `specs/PSA-API-NOTES.md` §1 and `PLATFORM-API-NOTES.md`)
//!
//! **ConnectWise Manage**
//! * `GET /login/companyinfo/{id}` without auth (body `null` for an unknown company); codebase
//!   `v2025_1/`; a different codebase segment → 404.
//! * Basic auth `base64("{companyId}+{publicKey}:{privateKey}")` plus a required `clientId`
//!   header; errors as `{"code","message","errors"}` (401 `Unauthorized`, 400
//!   `InvalidObject` with `errors[]`, 404 `NotFound`).
//! * `conditions` (see [`conditions`]): `= != < <= > >= contains like in`, `not in/like/
//!   contains`, strings in quotes with `*` wildcard, bare numbers/`True`/`False`/`null`,
//!   `[datetime]`, `/` references, `lastUpdated` alias, `and`/`or`/parentheses; unknown
//!   top-level fields and syntax errors → 400. String comparisons are case-insensitive.
//! * `childConditions` (same language) filters on child collections (`types/id = 1`,
//!   `communicationItems/value like "*@acme.test"`; a record matches when any element does),
//!   ANDed with `conditions`, on lists and `count`. UNCONFIRMED, the stricter reading: a
//!   collection field in `conditions`, or a non-collection field in `childConditions` → 400.
//! * `fields=id,name,status/id` returns partial records (lists and single records; paths
//!   through arrays keep that field of each element); an unknown field → 400 (UNCONFIRMED).
//!   `customFieldConditions` is ignored (the fake has no custom fields).
//! * Catalog items carry the schema's required `subcategory` and `type` references (invented
//!   values: `{1, "Cloud Services"}` and `{1, "Service"}`).
//! * Navigable paging (`page`, `pageSize` default 25, max 1000) with an RFC 5988 `Link` header
//!   (`first`/`prev` when not on page 1, `next`/`last` when not on the last page);
//!   forward-only paging (`pagination-type: forward-only`, `pageId` = `id > pageId`, ordered by
//!   id, `orderBy` → 400, `Link: <…pageId=N…>; rel="next"` only while more records exist).
//!   `orderBy=field [asc|desc], …` in navigable mode; `count` endpoints honour `conditions`.
//! * PATCH bodies `[{op, path, value}]` (`replace`/`add`/`remove`, case-sensitive top-level
//!   `path`, leading `/` accepted); PUT replaces the whole addition (omitted fields reset);
//!   POST → 201, DELETE → 204; additions require `product` and `billCustomer`
//!   (`Billable|DoNotBill|NoCharge`), like the vendor schema.
//! * Datetimes `2026-11-22T00:00:00Z` (whole seconds); every mutation stamps
//!   `_info.lastUpdated` with the fake clock. An addition write stamps the addition only, not
//!   its agreement, unless switched on ([`ConnectWiseFake::set_addition_touches_agreement`],
//!   `POST /_sandbox/connectwise/addition-edits {"touch_agreement": true}`): Manage does not
//!   promise either, and psa-bridge must be right in both modes (R-PROV-8).
//! * 429 `{"error":"ConnectWiseAPI","message":"Too many requests. Please try again in N
//!   seconds."}` + `Retry-After`; 500 `{"code":"UnexpectedServerError",…}`.
//!
//! **Platform (Account Management v2)**
//! * `POST /api/2/idp/token` (form `grant_type=client_credentials`, Basic auth or form
//!   `client_id`/`client_secret`), 7200 s tokens checked against the fake clock; token errors
//!   `{"error","error_description"}`; everything else `Authorization: Bearer`, errors as
//!   `{"error":{"code","domain":"AccountServer","message","details":{}}}`.
//! * A client only sees its partner's subtree (403 otherwise, 404 for unknown ids).
//! * Tenants with optimistic concurrency (`version` in PUT body / `?version=` on DELETE,
//!   stale → 409), soft delete (`deleted_at`, `allow_deleted`), `lod`, cursor paging
//!   (`paging.cursors.after`, opaque, carries all filters; absent on the last page),
//!   `updated_since` (strictly after), subtree listings ordered parents-before-children,
//!   `update_lock` enforced on `PUT /tenants/{id}` (403 unless the lock owner).
//! * Offering items with their own quota `version`: a stale version anywhere in a PUT → 409
//!   and nothing applied; unknown item/infra → 400 naming it; `check_usage` refuses to switch
//!   off an item with usage. Integral numbers are emitted as JSON integers.
//! * Record timestamps (`created_at`, `updated_at`, `deleted_at`, …) use the vendor examples'
//!   zone-less UTC form `2026-11-22T00:00:00.000000`; the envelope `timestamp` is RFC 3339
//!   (`…Z`). `updated_since` accepts both.
//! * `POST /api/2/users` answers **200** (as the vendor spec documents), `check_login`
//!   204/409, `send-activation-email` 204; the spec gives that operation no request body, so
//!   any body (even `{}`) → 400 (UNCONFIRMED: the stricter reading).
//!
//! ## Simplified / invented
//! * One application (`6e6d758d-8e74-3ae3-ac84-50eb0dff12eb`), one edition (`standard`), a
//!   fixed catalogue: 7 count items + one `storage` item per infra. Item `locked` is always
//!   false; `edition`/`editions` filters only distinguish `standard`/`*`.
//! * Tenant names must be unique among live siblings (409), tenants with live children cannot
//!   be deleted (409), moving tenants is unsupported.
//! * The multi-page `timestamp` is the first page's (carried in the cursor), so using it as
//!   the next `updated_since` never misses changes made while paging. `updated_since` is
//!   strict (`>`): with a pinned clock, advance it (`set_now`) before making the changes an
//!   incremental listing should see.
//! * `GET /tenants`: `expand_offering_items=true` embeds each tenant's `offering_items`
//!   (`[]` otherwise: the batch schema requires the key); `with_offering_items=true` /
//!   `with_infra_offering_items=true` only *filter* (tenants with count / infra items), as the
//!   parameters' documentation says. UNCONFIRMED: the `tenantBatch` schema's description says
//!   `with_offering_items` returns the items — the fake takes the parameters' reading (the
//!   stricter one for a client), and the product asks with `expand_offering_items` and reads a
//!   tenant's items itself when a listing carries none, which works under either reading.
//!   "With items" means an enabled, live item (UNCONFIRMED). Full-lod tenants carry invented
//!   constant `brand_uuid`, `barrier: 0`, `default_idp_id`.
//!   [`PlatformFake::set_listings_embed_items`]`(false)` makes listings leave items out even
//!   when expanded (to test clients that must fall back to `/tenants/{id}/offering_items`).
//! * A client with no `parent_id`/`subtree_root_id`/`uuids` gets its own subtree.
//! * Usages: one per usage name of each offering item (its own always; for storage also
//!   `<usage_name>_geo|_class1|_class2` once set, UNCONFIRMED suffixes), `value ==
//!   absolute_value` = the current value, `range_start` = first day of the fake clock's month.
//!   A per-day history backs usage reports ([`PlatformFake::set_usage_on`]);
//!   `PUT /tenants/usages` reports usage with per-item errors.
//! * Usage reports (`POST /reports`, stored reports as gzip csv_v2_0, `DELETE ?version=`):
//!   strict body rules, readiness by the fake clock (day D complete at D+1 06:00), switches
//!   [`PlatformFake::set_report_polls_in_progress`] and
//!   [`PlatformFake::set_usage_history_late`]; details and UNCONFIRMED choices in
//!   `src/platform/reports.rs`, `report_post.rs`, `report_csv.rs`.
//! * ConnectWise: a company's primary contact is a `company/contacts` record
//!   (`communicationItems[{type:{name:"Email"}, value, communicationType:"Email",
//!   defaultFlag:true}]`) referenced by the company's `defaultContact {id, name}`. Agreement status is computed when
//!   the agreement is written. Id ranges differ per entity (companies from 19300, contacts
//!   7000, agreements 500, additions 3000, products 100) so id mix-ups show up.
//! * Writes a PSA user makes: `POST`/`PATCH` of `company/companies`, `company/contacts`,
//!   `finance/agreements`, `service/tickets` (201/200 with the record; required fields and
//!   references checked as the schema says, see `connectwise/entity_writes.rs`). A contact
//!   posted with `defaultFlag: true` becomes its company's `defaultContact` (invented).
//!   Tickets have invented boards (`Help Desk`, `Alerts`), statuses (`New`, `In Progress`,
//!   `>Closed` — closing sets `closedFlag`) and priorities; notes and board routes are not faked.
//! * No rate limiting unless injected with [`Faults`].
//!   (The Autotask fake does model its vendor's hourly threshold and thread limit.)
//!
//! ## Counting
//! `Stats.requests` counts every request matching a vendor route (faulted ones included);
//! `writes` counts POST/PUT/PATCH/DELETE among them except token issuance and Autotask's
//! `POST …/query[/count]`; `max_in_flight_per_endpoint` is filled by the Autotask fake only
//! (key `"{ApiIntegrationCode} {Entity}"`, requests rejected by the thread limit included);
//! [`PlatformFake::token_requests`] counts token requests that reached the handler (a request
//! answered by a `Status` fault is not among them). Faults with `times == 0` are ignored.
//!
//! ## Test hooks
//! [`Stats`] (requests, writes, max concurrency, per-route counts), [`Faults`] (status codes
//! with `Retry-After`, latency, dropping the response after the write), a settable clock, and
//! the `/_sandbox/*` control API on each fake (`GET stats`, `POST reset-stats`,
//! `POST/GET/DELETE faults`, `POST latency {"ms":N}`, `POST clock {"now":…|null}`), which is
//! never counted or faulted.

// Handlers use `Result<T, Response>` so the error path *is* the vendor's error response;
// boxing it would only add noise in a test fake.
#![allow(clippy::result_large_err)]

pub mod autotask;
mod common;
pub mod conditions;
pub mod connectwise;
pub mod platform;

use std::net::SocketAddr;

pub use autotask::{
    AtCompany, AtContact, AtContract, AtContractService, AtContractServiceAdjustment,
    AtContractServiceUnit, AtNewCompany, AtNewContract, AtService, AtUdf, AutotaskFake,
};
pub use common::{Fault, FaultKind, Faults, Stats};
pub use connectwise::{
    ConnectWiseFake, CwAddition, CwAgreement, CwCatalogItem, CwCommunicationItem, CwCompany,
    CwCompanyRef, CwContact, CwInfo, CwProductRef, CwRef, CwTicket, NewAddition, NewAgreement,
    NewCompany,
};
pub use platform::{PartnerAccount, PlatformFake};

/// All fakes, each on its own `127.0.0.1` port.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub connectwise: ConnectWiseFake,
    pub platform: PlatformFake,
    pub autotask: AutotaskFake,
}

impl Sandbox {
    /// Starts all fakes on free ports of 127.0.0.1.
    pub async fn start() -> std::io::Result<Sandbox> {
        Self::start_on(0, 0, 0).await
    }

    /// Starts all fakes on the given 127.0.0.1 ports (0 = pick a free port).
    pub async fn start_on(
        cw_port: u16,
        platform_port: u16,
        autotask_port: u16,
    ) -> std::io::Result<Sandbox> {
        let connectwise =
            ConnectWiseFake::start_on(SocketAddr::from(([127, 0, 0, 1], cw_port))).await?;
        let platform =
            PlatformFake::start_on(SocketAddr::from(([127, 0, 0, 1], platform_port))).await?;
        let autotask =
            AutotaskFake::start_on(SocketAddr::from(([127, 0, 0, 1], autotask_port))).await?;
        Ok(Sandbox {
            connectwise,
            platform,
            autotask,
        })
    }
}
