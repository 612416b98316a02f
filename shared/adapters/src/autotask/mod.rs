//! Autotask PSA REST v1.0. Every Autotask URL of the product is in this module.
//!
//! - Zone discovery (R-SET-3, [`zone`]): `GET {zone base}v1.0/zoneInformation?user={API user}`
//!   without credentials, once per client (lazily, on first use); the API base is the answer's
//!   `url` + `V1.0/`. The discovered origin must be https (loopback excepted) and on the zone
//!   base's domain (`webservicesN.autotask.net` for `webservices.autotask.net`).
//! - Auth ([`transport`]): the `ApiIntegrationCode`, `UserName` and `Secret` headers on every
//!   call, sent only to the discovered origin (a `nextPageUrl` elsewhere is not followed: the
//!   query continues with `id gt {last id}` instead).
//! - Queries ([`reads`]): `POST {Entity}/query` `{maxRecords: 500, filter}`, following
//!   `nextPageUrl` (GET; it carries `search` and `paging`); `in (…)` batches of at most 500 ids.
//!   Answers are parsed into the serde shapes of [`wire`].
//! - Picklists and UDFs ([`metadata`]) from `{Entity}/entityInformation/fields|userDefinedFields`,
//!   never hard-coded; cached per process (an hour; refreshed once when a label or value is
//!   missing).
//! - Request economy ([`limits`], DESIGN "Outbound HTTP", R-REL-1): at most 3 requests in flight
//!   per entity endpoint (the vendor's thread limit), on top of the [`Endpoint`]'s overall cap; a
//!   hard request budget per client; `ThresholdInformation` read before the first data call and
//!   every [`AutotaskLimits::check_every`] requests: above 50 % of the hourly threshold each
//!   request is delayed, near 100 % the client stops with a clear, retryable error.
//! - Errors ([`errors`]): `{"errors":[…]}`, often HTTP 500 even for permanent ones. 429 is
//!   retried by the [`Endpoint`] (Retry-After); 502/503/504 and 500s that read like a server
//!   failure are retried here; other 500s are permanent (a bad integration code, a bad query).
//! - Writes ([`writes`]): services, contract services and unit adjustments, each sent once.
//! - R-PROV-3: the contract's PAYG user-defined field (name configurable, default `PAYG`) is
//!   handed to the domain as Autotask holds it ([`domain::model::PaygField`], a picklist's
//!   label); [`domain::rules::psa::PsaRules`] decides PAYG, prepaid or a problem to report.

mod errors;
mod limits;
mod metadata;
mod reads;
#[cfg(test)]
mod tests;
mod transport;
mod wire;
mod writes;
mod zone;

pub use limits::AutotaskLimits;
pub use metadata::PicklistValue;
pub use zone::{follow_next_page, zone_base_url, zone_url_allowed};

use crate::http::{Endpoint, HttpSettings};
use chrono::{DateTime, NaiveDate, Utc};
use domain::model::Line;
use domain::rules::settings::AutotaskCredentials;
use domain::{PortError, PortResult, System};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

/// Production zone-discovery base.
pub const PRODUCTION_ZONE_URL: &str = "https://webservices.autotask.net/atservicesrest/";
/// Environment variable overriding the zone-discovery base (tests, local runs).
pub const ZONE_URL_ENV: &str = "PSA_BRIDGE_AUTOTASK_ZONE_URL";
/// Environment variable naming the contract UDF that marks PAYG contracts.
pub const PAYG_FIELD_ENV: &str = "PSA_BRIDGE_AUTOTASK_PAYG_FIELD";
/// Default name of the contract UDF that marks PAYG contracts (R-PROV-3).
pub const DEFAULT_PAYG_FIELD: &str = "PAYG";
/// `maxRecords` and page size.
const PAGE_SIZE: usize = 500;
/// Values per `in` condition (the vendor allows 500).
const IDS_PER_QUERY: usize = 500;
/// How long picklists and UDF definitions are trusted.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Most pages one query may take (a loop guard: 5,000,000 records).
const MAX_PAGES: usize = 10_000;
const VENDOR: &str = "Autotask";
/// The `system` field of this adapter's log lines.
const LOG_SYSTEM: &str = "autotask";
const CONTRACT_ACTIVE: &str = "Active";
const RECURRING_SERVICE: &str = "Recurring Service";

/// Process-level Autotask settings: where zone discovery starts, the PAYG field, the limits,
/// and the clock "today" comes from (current units, adjustment dates).
#[derive(Clone)]
pub struct AutotaskConfig {
    pub zone_url: String,
    pub payg_field: String,
    pub limits: AutotaskLimits,
    pub clock: Arc<dyn domain::ports::Clock>,
}

impl std::fmt::Debug for AutotaskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutotaskConfig")
            .field("zone_url", &self.zone_url)
            .field("payg_field", &self.payg_field)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for AutotaskConfig {
    fn default() -> Self {
        AutotaskConfig {
            zone_url: PRODUCTION_ZONE_URL.to_owned(),
            payg_field: DEFAULT_PAYG_FIELD.to_owned(),
            limits: AutotaskLimits::default(),
            clock: Arc::new(domain::ports::SystemClock),
        }
    }
}

impl AutotaskConfig {
    /// The defaults, with `PSA_BRIDGE_AUTOTASK_ZONE_URL` / `PSA_BRIDGE_AUTOTASK_PAYG_FIELD`
    /// when set.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let d = AutotaskConfig::default();
        AutotaskConfig {
            zone_url: var(ZONE_URL_ENV).unwrap_or(d.zone_url),
            payg_field: var(PAYG_FIELD_ENV).unwrap_or(d.payg_field),
            ..d
        }
    }
}

/// An Autotask client for one partner (cheap to clone; clones share limits and caches).
#[derive(Clone)]
pub struct Autotask {
    /// The partner this client acts for (in every log line of its calls).
    partner: Arc<str>,
    cfg: Arc<Cfg>,
    st: Arc<State>,
}

#[derive(Clone)]
struct Cfg {
    zone_ep: Endpoint,
    zone_base: Url,
    http: reqwest::Client,
    settings: HttpSettings,
    username: String,
    secret: SecretString,
    code: SecretString,
    h_username: HeaderValue,
    h_secret: HeaderValue,
    h_code: HeaderValue,
    payg_field: String,
    limits: AutotaskLimits,
    today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
}

struct State {
    api: OnceCell<Api>,
    sems: Mutex<HashMap<String, Arc<Semaphore>>>,
    slow: AtomicBool,
    next_check: AtomicU64,
    prefetched: Mutex<HashMap<String, Vec<Line>>>,
}

struct Api {
    ep: Endpoint,
    /// Cache key prefix of this database.
    key: String,
}

/// Autotask datetimes as the API writes them: zone-less UTC, whole seconds.
fn at_format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn at_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%dT00:00:00").to_string()
}

fn rejected(message: String) -> PortError {
    PortError::Rejected {
        system: System::Psa,
        message,
    }
}

fn transient(message: String) -> PortError {
    PortError::Transient {
        system: System::Psa,
        message,
    }
}

fn header(value: &str, what: &str) -> PortResult<HeaderValue> {
    let mut h = HeaderValue::from_str(value.trim()).map_err(|_| PortError::Credentials {
        system: System::Psa,
        message: format!("the Autotask {what} contains characters that cannot be sent"),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

fn numeric_id(what: &str, id: &str) -> PortResult<i64> {
    id.trim().parse::<i64>().map_err(|_| PortError::NotFound {
        system: System::Psa,
        message: format!("{VENDOR} {what} {id:?} is not an id"),
    })
}

impl Autotask {
    /// A client for one partner. Nothing is sent until first use.
    pub fn new(
        creds: &AutotaskCredentials,
        client: reqwest::Client,
        settings: &HttpSettings,
        zone_base: &str,
    ) -> PortResult<Self> {
        let zone_base = zone_base_url(zone_base).map_err(rejected)?;
        let username = creds.username.trim().to_owned();
        if username.is_empty() {
            return Err(PortError::Credentials {
                system: System::Psa,
                message: "the Autotask API user name is empty".to_owned(),
            });
        }
        Ok(Autotask {
            partner: Arc::from(""),
            cfg: Arc::new(Cfg {
                zone_ep: Endpoint::new(
                    System::Psa,
                    VENDOR,
                    client.clone(),
                    zone_base.clone(),
                    settings,
                ),
                zone_base,
                http: client,
                settings: settings.clone(),
                h_username: header(&username, "API user name")?,
                h_secret: header(creds.secret.expose_secret(), "secret")?,
                h_code: header(creds.integration_code.expose_secret(), "integration code")?,
                username,
                secret: creds.secret.clone(),
                code: creds.integration_code.clone(),
                payg_field: DEFAULT_PAYG_FIELD.to_owned(),
                limits: AutotaskLimits::default(),
                today: Arc::new(|| Utc::now().date_naive()),
            }),
            st: Arc::new(State {
                api: OnceCell::new(),
                sems: Mutex::new(HashMap::new()),
                slow: AtomicBool::new(false),
                next_check: AtomicU64::new(0),
                prefetched: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A client configured from [`AutotaskConfig`].
    pub fn from_config(
        creds: &AutotaskCredentials,
        client: reqwest::Client,
        settings: &HttpSettings,
        config: &AutotaskConfig,
    ) -> PortResult<Self> {
        let clock = config.clock.clone();
        Ok(Self::new(creds, client, settings, &config.zone_url)?
            .with_payg_field(&config.payg_field)
            .with_limits(config.limits.clone())
            .with_today(move || clock.now().date_naive()))
    }

    /// The partner this client acts for, named in the logs of its calls.
    pub fn for_partner(mut self, partner: &str) -> Self {
        self.partner = Arc::from(partner);
        self
    }

    /// The contract UDF that marks PAYG contracts (R-PROV-3; default `PAYG`).
    pub fn with_payg_field(mut self, name: &str) -> Self {
        Arc::make_mut(&mut self.cfg).payg_field = name.trim().to_owned();
        self
    }

    pub fn with_limits(mut self, limits: AutotaskLimits) -> Self {
        Arc::make_mut(&mut self.cfg).limits = limits;
        self
    }

    /// The day whose ContractServiceUnits are the current units (default: today in UTC).
    pub fn with_today(mut self, today: impl Fn() -> NaiveDate + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.cfg).today = Arc::new(today);
        self
    }

    /// Requests sent so far (zone discovery and API, retries included).
    pub fn requests(&self) -> u64 {
        self.cfg.zone_ep.requests() + self.st.api.get().map_or(0, |a| a.ep.requests())
    }

    /// The API base found by zone discovery, once discovered.
    pub fn api_base(&self) -> Option<Url> {
        self.st.api.get().map(|a| a.ep.origin().clone())
    }

    /// Whether requests are being slowed down (usage above the slow-down share).
    pub fn slowed_down(&self) -> bool {
        self.st.slow.load(Ordering::Relaxed)
    }
}
