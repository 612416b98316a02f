//! Autotask PSA REST v1.0. Every Autotask URL of the product is in this file.
//!
//! - Zone discovery (R-SET-3): `GET {zone base}v1.0/zoneInformation?user={API user}` without
//!   credentials, once per client (lazily, on first use); the API base is the answer's `url` +
//!   `V1.0/`. The discovered origin must be https (loopback excepted) and on the zone base's
//!   domain (`webservicesN.autotask.net` for `webservices.autotask.net`).
//! - Auth: the `ApiIntegrationCode`, `UserName` and `Secret` headers on every call, sent only to
//!   the discovered origin (a `nextPageUrl` elsewhere is not followed: the query continues with
//!   `id gt {last id}` instead).
//! - Queries: `POST {Entity}/query` `{maxRecords: 500, filter}`, following `nextPageUrl` (GET;
//!   it carries `search` and `paging`); `in (…)` batches of at most 500 ids.
//! - Picklists and UDFs from `{Entity}/entityInformation/fields|userDefinedFields`, never
//!   hard-coded; cached per process (an hour; refreshed once when a label or value is missing).
//! - Request economy (DESIGN "Outbound HTTP", R-REL-1): at most 3 requests in flight per entity
//!   endpoint (the vendor's thread limit), on top of the [`Endpoint`]'s overall cap; a hard
//!   request budget per client; `ThresholdInformation` read before the first data call and every
//!   [`AutotaskLimits::check_every`] requests: above 50 % of the hourly threshold each request is
//!   delayed, near 100 % the client stops with a clear, retryable error.
//! - Errors: `{"errors":[…]}`, often HTTP 500 even for permanent ones. 429 is retried by the
//!   [`Endpoint`] (Retry-After); 502/503/504 and 500s that read like a server failure are
//!   retried here; other 500s are permanent (a bad integration code, a bad query).
//! - R-PROV-3: the contract's PAYG user-defined field (name configurable, default `PAYG`) decides
//!   PAYG or prepaid; a value that is neither is reported on the agreement (`problem`), never
//!   guessed.

use crate::http::{
    parse_day, parse_time, snippet, Endpoint, ErrorDialect, Forbidden, HttpSettings, Idempotency,
    Retry,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::model::{Agreement, Contact, Line, ProductRef, PsaCompany};
use domain::ports::{AgreementQuery, CompanyQuery, ContractWriter, PsaDirectory};
use domain::rules::settings::AutotaskCredentials;
use domain::{PortError, PortResult, System};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
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
const CONTRACT_ACTIVE: &str = "Active";
const RECURRING_SERVICE: &str = "Recurring Service";

/// Request economy of one client (DESIGN "Outbound HTTP").
#[derive(Debug, Clone)]
pub struct AutotaskLimits {
    /// Requests in flight at once per entity endpoint (the vendor's thread limit is 3 per
    /// integration code and endpoint).
    pub per_endpoint: usize,
    /// Most requests this client may send (one partner's run); beyond it calls fail as
    /// transient, leaving the rest for the next run.
    pub request_budget: u64,
    /// Share of the hourly threshold above which every request is delayed.
    pub slow_above: f64,
    /// The delay added before each request while above `slow_above`.
    pub slow_delay: Duration,
    /// Share of the hourly threshold the client never passes: it stops before.
    pub stop_at: f64,
    /// Re-read `ThresholdInformation` every this many requests (0: only on `check_budget`).
    pub check_every: u64,
    /// When all agreements are listed, read the lines of the active ones in batches, so the
    /// `lines` calls that follow need no requests of their own.
    pub prefetch_lines: bool,
}

impl Default for AutotaskLimits {
    fn default() -> Self {
        AutotaskLimits {
            per_endpoint: 3,
            request_budget: 2_500,
            slow_above: 0.5,
            slow_delay: Duration::from_millis(250),
            stop_at: 0.95,
            check_every: 100,
            prefetch_lines: true,
        }
    }
}

impl AutotaskLimits {
    /// As the default, without the slow-down delay (tests, the local stack).
    pub fn quick() -> Self {
        AutotaskLimits {
            slow_delay: Duration::ZERO,
            ..Default::default()
        }
    }
}

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

/// One value of a picklist (`entityInformation/fields`, `picklistValues`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PicklistValue {
    pub value: String,
    pub label: String,
    pub is_active: bool,
}

#[derive(Debug, Clone)]
struct UdfDef {
    name: String,
    picklist: Option<Vec<PicklistValue>>,
}

type Picklists = HashMap<String, Vec<PicklistValue>>;
type Cache<T> = OnceLock<Mutex<HashMap<String, (Instant, Arc<T>)>>>;

/// Per-process caches, keyed by API base + API user (one Autotask database) + entity.
static PICKLISTS: Cache<Picklists> = OnceLock::new();
static UDFS: Cache<Vec<UdfDef>> = OnceLock::new();

fn cache_get<T>(cache: &'static Cache<T>, key: &str) -> Option<Arc<T>> {
    let map = cache.get_or_init(Default::default);
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .filter(|(at, _)| at.elapsed() < METADATA_TTL)
        .map(|(_, v)| v.clone())
}

fn cache_put<T>(cache: &'static Cache<T>, key: String, v: Arc<T>) {
    let map = cache.get_or_init(Default::default);
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (Instant::now(), v));
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

/// How Autotask error answers read: `{"errors": ["…"]}` (or `[{message}]`), often as HTTP 500
/// even for permanent errors; credentials never reach a message.
impl ErrorDialect for Cfg {
    fn system(&self) -> System {
        System::Psa
    }

    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn message(&self, body: &str) -> Option<String> {
        let msgs = error_messages(body);
        (!msgs.is_empty()).then(|| msgs.join("; "))
    }

    fn unauthorized(&self) -> &'static str {
        "check the API user's secret (and user name)"
    }

    fn forbidden(&self) -> Forbidden {
        Forbidden::Credentials(
            "the user has no API access: use an API-only user (security level 'API User \
             (system)') with this integration's tracking identifier",
        )
    }

    fn server_error_retryable(&self, status: StatusCode, body: &str) -> bool {
        retryable(status, body)
    }

    /// An unknown API user (no zone) and a bad integration code, whatever the status.
    fn vendor_code(&self, _status: StatusCode, text: &str, what: &str) -> Option<PortError> {
        let lower = text.to_ascii_lowercase();
        if lower.contains("zone information could not be determined") {
            return Some(zone_unknown());
        }
        if lower.contains("integrationcode is invalid")
            || (lower.contains("integration code") && lower.contains("invalid"))
        {
            return Some(PortError::Credentials {
                system: System::Psa,
                message: format!(
                    "{VENDOR} rejected the integration code — check the API tracking identifier \
                     assigned to the API user ({what}: {text})"
                ),
            });
        }
        None
    }

    fn redact(&self, text: String) -> String {
        let mut out = text;
        for secret in [
            self.secret.expose_secret(),
            self.code.expose_secret(),
            self.username.as_str(),
        ] {
            let secret = secret.trim();
            if secret.len() >= 3 {
                out = replace_ci(&out, secret, "[redacted]");
            }
        }
        out
    }
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

/// `zone_base` as given: a URL, https unless loopback; a trailing `/` is added.
pub fn zone_base_url(zone_base: &str) -> Result<Url, String> {
    let s = zone_base.trim().trim_end_matches('/');
    let u = Url::parse(&format!("{s}/"))
        .map_err(|e| format!("Autotask zone URL {zone_base:?} is not a URL: {e}"))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(&u) => Ok(u),
        _ => Err(format!("Autotask zone URL {zone_base:?} must use https")),
    }
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether the API URL zone discovery returned may receive credentials: https (loopback
/// excepted), and the zone base's host or a host of its parent domain
/// (`webservices5.autotask.net` for `webservices.autotask.net`); IP hosts must match exactly.
pub fn zone_url_allowed(zone_base: &Url, discovered: &Url) -> bool {
    let scheme_ok = discovered.scheme() == "https"
        || (discovered.scheme() == "http" && is_loopback(discovered));
    if !scheme_ok {
        return false;
    }
    match (zone_base.host(), discovered.host()) {
        (Some(url::Host::Domain(base)), Some(url::Host::Domain(found))) => {
            let base = base.to_ascii_lowercase();
            let found = found.to_ascii_lowercase();
            if base == found {
                return true;
            }
            let labels: Vec<&str> = base.split('.').collect();
            if labels.len() < 3 {
                return false;
            }
            let parent = labels[1..].join(".");
            found.ends_with(&format!(".{parent}"))
        }
        (Some(_), Some(_)) => discovered.origin() == zone_base.origin(),
        _ => false,
    }
}

/// The `nextPageUrl` to follow, if it may receive credentials (same origin as the API).
pub fn follow_next_page(api_origin: &Url, next_page_url: &str) -> Option<Url> {
    let u = Url::parse(next_page_url).ok()?;
    (u.origin() == api_origin.origin()).then_some(u)
}

/// R-PROV-3: a PAYG field value. `Ok(Some(true))` PAYG, `Ok(Some(false))` prepaid, `Ok(None)`
/// unset (prepaid by default), `Err` a value that is neither.
pub fn payg_value(raw: Option<&str>) -> Result<Option<bool>, String> {
    let Some(v) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "payg" | "on" => Ok(Some(true)),
        "no" | "n" | "false" | "0" | "off" | "prepaid" | "pre" => Ok(Some(false)),
        _ => Err(v.to_owned()),
    }
}

/// The entity endpoint of an API URL (`…/V1.0/Companies/query` → `Companies`).
fn entity_of(u: &Url) -> String {
    let segs: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
    segs.iter()
        .position(|s| s.eq_ignore_ascii_case("V1.0"))
        .and_then(|i| segs.get(i + 1))
        .map(|s| (*s).to_owned())
        .unwrap_or_default()
}

/// Autotask datetimes as the API writes them: zone-less UTC, whole seconds.
fn at_format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn at_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%dT00:00:00").to_string()
}

fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn date(v: &Value, key: &str) -> Option<NaiveDate> {
    parse_day(&s(v, key)?)
}

fn truthy(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
        _ => false,
    }
}

/// The messages of an Autotask error body (`{"errors":["…"]}` or `[{message}]`).
fn error_messages(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v.get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    other => other
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an error answer is worth repeating: 502/503/504 always; a 500 only when it reads
/// like a server failure (Autotask answers 500 to bad credentials and bad queries too).
fn retryable(status: StatusCode, body: &str) -> bool {
    match status.as_u16() {
        502..=504 => true,
        500 => {
            let msgs = error_messages(body);
            if msgs.is_empty() {
                return true;
            }
            let text = msgs.join(" ").to_ascii_lowercase();
            [
                "unexpected error",
                "try again",
                "timeout",
                "timed out",
                "temporarily",
                "deadlock",
            ]
            .iter()
            .any(|m| text.contains(m))
        }
        _ => false,
    }
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

/// How a contract's PAYG field is read.
enum PaygDef {
    /// The tenant has no such UDF.
    Missing,
    Text,
    Picklist(Vec<PicklistValue>),
}

/// What mapping a contract needs: the Active status value and the PAYG field.
struct ContractCtx {
    active: String,
    field: String,
    payg: PaygDef,
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

    /// Text from Autotask with the credentials blanked out (they never reach an error).
    fn scrub(&self, text: &str) -> String {
        self.cfg.redact(text.to_owned())
    }

    // --- zone discovery ------------------------------------------------------------------

    async fn api(&self) -> PortResult<&Api> {
        self.st.api.get_or_try_init(|| self.discover()).await
    }

    async fn discover(&self) -> PortResult<Api> {
        let mut url = self
            .cfg
            .zone_ep
            .url("v1.0/zoneInformation")
            .map_err(|e| rejected(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("user", &self.cfg.username);
        let (status, text) = self
            .exchange(
                &self.cfg.zone_ep,
                Method::GET,
                url,
                None,
                false,
                Idempotency::Safe,
            )
            .await?;
        if !status.is_success() {
            return Err(self.error_from(status, &text, "zone discovery"));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            rejected(format!(
                "Autotask zone discovery returned an unexpected body: {e}"
            ))
        })?;
        let Some(zone) = v.get("url").and_then(Value::as_str).map(str::trim) else {
            return Err(zone_unknown());
        };
        if zone.is_empty() {
            return Err(zone_unknown());
        }
        let zone = if zone.ends_with('/') {
            zone.to_owned()
        } else {
            format!("{zone}/")
        };
        let zone_url = Url::parse(&zone).map_err(|e| {
            rejected(format!(
                "Autotask zone discovery returned a bad URL {zone:?}: {e}"
            ))
        })?;
        if !zone_url_allowed(&self.cfg.zone_base, &zone_url) {
            return Err(rejected(format!(
                "Autotask zone discovery answered {}, which is not an Autotask address for {}; \
                 no credentials were sent",
                zone_url.origin().ascii_serialization(),
                self.cfg.zone_base.origin().ascii_serialization()
            )));
        }
        let base = zone_url
            .join("V1.0/")
            .map_err(|e| rejected(format!("Autotask API base: {e}")))?;
        tracing::debug!(zone = %base, "Autotask zone discovered");
        Ok(Api {
            key: format!("{base}|{}", self.cfg.username.to_lowercase()),
            ep: Endpoint::new(
                System::Psa,
                VENDOR,
                self.cfg.http.clone(),
                base,
                &self.cfg.settings,
            ),
        })
    }

    // --- sending ---------------------------------------------------------------------------

    /// One request, retried on 429 (by the endpoint, honouring Retry-After), 502/503/504,
    /// server-failure 500s and lost connections (all our requests are reads). Returns the
    /// first answer that is not retryable, with its body.
    ///
    /// A write (`Idempotency::Unsafe`) is never sent twice after it may have arrived: a 5xx or
    /// a lost answer is handed back, and the caller re-reads before it writes again.
    async fn exchange(
        &self,
        ep: &Endpoint,
        method: Method,
        url: Url,
        body: Option<&Value>,
        auth: bool,
        idem: Idempotency,
    ) -> PortResult<(StatusCode, String)> {
        let mut retry = Retry::new(&self.cfg.settings.retry, System::Psa, VENDOR);
        // `Idempotency::Unsafe` makes the endpoint retry only 429 and hand back 5xx answers and
        // transport failures (its message starts "{vendor} did not answer", see crate::http):
        // this loop decides about those, since Autotask also answers 500 to permanent errors.
        let transport = format!("{VENDOR} did not answer");
        loop {
            let sent = ep
                .send(Idempotency::Unsafe, || {
                    let mut rb = ep
                        .request(method.clone(), url.clone())
                        .header("Accept", "application/json");
                    if auth {
                        rb = rb
                            .header("ApiIntegrationCode", self.cfg.h_code.clone())
                            .header("UserName", self.cfg.h_username.clone())
                            .header("Secret", self.cfg.h_secret.clone());
                    }
                    if let Some(b) = body {
                        rb = rb.json(b);
                    }
                    rb
                })
                .await;
            let why = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.text().await {
                        Ok(text) if retryable(status, &text) => format!(
                            "{VENDOR} answered {status}: {}",
                            self.scrub(&snippet(&text))
                        ),
                        Ok(text) => return Ok((status, text)),
                        Err(e) => format!("{VENDOR} answer was cut off: {e}"),
                    }
                }
                Err(PortError::Transient { message, .. }) if message.starts_with(&transport) => {
                    message
                }
                Err(e) => return Err(e),
            };
            if idem == Idempotency::Unsafe {
                return Err(transient(format!(
                    "{why} (a write is not repeated; the next run re-reads first)"
                )));
            }
            retry.pause(why, None).await?;
        }
    }

    fn semaphore(&self, entity: &str) -> Arc<Semaphore> {
        let mut sems = self.st.sems.lock().unwrap_or_else(|e| e.into_inner());
        sems.entry(entity.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.limits.per_endpoint.max(1))))
            .clone()
    }

    /// The request budget, the threshold check when due, and the slow-down delay.
    async fn guard(&self) -> PortResult<()> {
        self.within_budget()?;
        let every = self.cfg.limits.check_every;
        if every > 0 {
            let used = self.requests();
            let due = self.st.next_check.load(Ordering::Relaxed);
            if used >= due
                && self
                    .st
                    .next_check
                    .compare_exchange(due, used + every, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                if let Err(e) = self.check_budget(every).await {
                    // Check again on the next call.
                    self.st.next_check.store(0, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let delay = self.cfg.limits.slow_delay;
        if self.slowed_down() && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    fn within_budget(&self) -> PortResult<()> {
        let budget = self.cfg.limits.request_budget;
        let used = self.requests();
        if used >= budget {
            return Err(transient(format!(
                "{VENDOR}: this run's request budget of {budget} requests is used up ({used} sent); \
                 the rest is left for the next run"
            )));
        }
        Ok(())
    }

    /// An authenticated read after the guard.
    async fn call(&self, method: Method, url: Url, body: Option<&Value>) -> PortResult<Value> {
        self.guard().await?;
        self.call_unguarded(method, url, body, Idempotency::Safe)
            .await
    }

    /// An authenticated write after the guard (sent once; see [`Autotask::exchange`]).
    async fn write(&self, method: Method, url: Url, body: &Value) -> PortResult<Value> {
        self.guard().await?;
        self.call_unguarded(method, url, Some(body), Idempotency::Unsafe)
            .await
    }

    /// An authenticated call to the API origin, within the per-endpoint limit.
    async fn call_unguarded(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> PortResult<Value> {
        let api = self.api().await?;
        api.ep.same_origin(&url)?;
        self.within_budget()?;
        let entity = entity_of(&url);
        let (status, text) = {
            let _permit = self
                .semaphore(&entity)
                .acquire_owned()
                .await
                .expect("semaphore open");
            self.exchange(&api.ep, method, url.clone(), body, true, idem)
                .await?
        };
        let what = url
            .path()
            .rsplit_once("/V1.0/")
            .or_else(|| url.path().rsplit_once("/v1.0/"))
            .map_or(url.path(), |(_, p)| p)
            .to_owned();
        if !status.is_success() {
            return Err(self.error_from(status, &text, &what));
        }
        serde_json::from_str(&text)
            .map_err(|e| rejected(format!("{VENDOR} {what}: unexpected body: {e}")))
    }

    fn error_from(&self, status: StatusCode, body: &str, what: &str) -> PortError {
        self.cfg.classify(status, body, what)
    }

    // --- request economy -------------------------------------------------------------------

    /// `ThresholdInformation`: (requests used in the current hour, the hourly threshold).
    pub async fn threshold(&self) -> PortResult<(u64, u64)> {
        let api = self.api().await?;
        let url = api.ep.url("ThresholdInformation")?;
        let v = self
            .call_unguarded(Method::GET, url, None, Idempotency::Safe)
            .await?;
        let n = |k: &str| {
            v.get(k).and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_f64().map(|f| f.max(0.0) as u64))
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        match (
            n("currentTimeframeRequestCount"),
            n("externalRequestThreshold"),
        ) {
            (Some(used), Some(limit)) => Ok((used, limit)),
            _ => Err(rejected(format!(
                "{VENDOR} ThresholdInformation: unexpected body: {}",
                snippet(&v.to_string())
            ))),
        }
    }

    /// Refuses (transient) when `expected_requests` more would pass the stop share of the
    /// hourly threshold the partner's Autotask database shares with its other integrations;
    /// turns the per-request slow-down on above the slow-down share (off below it).
    pub async fn check_budget(&self, expected_requests: u64) -> PortResult<()> {
        let (used, limit) = self.threshold().await?;
        if limit == 0 {
            return Ok(());
        }
        let l = &self.cfg.limits;
        let stop = (limit as f64 * l.stop_at).floor() as u64;
        let pct = used as f64 * 100.0 / limit as f64;
        if used.saturating_add(expected_requests) > stop {
            return Err(transient(format!(
                "{VENDOR} API usage is {used} of {limit} requests this hour ({pct:.0}%); the \
                 {expected_requests} requests this work may need would pass {stop} ({:.0}% of the \
                 threshold shared with the partner's other integrations), so it stops here and \
                 resumes once usage has fallen",
                l.stop_at * 100.0
            )));
        }
        let slow = used as f64 > limit as f64 * l.slow_above;
        if self.st.slow.swap(slow, Ordering::Relaxed) != slow {
            if slow {
                tracing::warn!(
                    used,
                    limit,
                    "Autotask usage above {:.0}% of the hourly threshold: slowing down",
                    l.slow_above * 100.0
                );
            } else {
                tracing::info!(used, limit, "Autotask usage back below the slow-down share");
            }
        }
        Ok(())
    }

    // --- queries ---------------------------------------------------------------------------

    /// Every record matching `filters` (ANDed), page by page; each page is mapped at once.
    async fn query<T>(
        &self,
        entity: &str,
        filters: &[Value],
        map: impl Fn(&Value) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let api = self.api().await?;
        let query_url = api.ep.url(&format!("{entity}/query"))?;
        let base_filters: Vec<Value> = if filters.is_empty() {
            vec![json!({"op": "gte", "field": "id", "value": 0})]
        } else {
            filters.to_vec()
        };
        let mut out = Vec::new();
        let mut next: Option<Url> = None;
        let mut after: Option<i64> = None;
        let mut max_seen: Option<i64> = None;
        for _ in 0..MAX_PAGES {
            let v = match next.take() {
                Some(u) => self.call(Method::GET, u, None).await?,
                None => {
                    let mut f = base_filters.clone();
                    if let Some(a) = after {
                        f.push(json!({"op": "gt", "field": "id", "value": a}));
                    }
                    let body = json!({"maxRecords": PAGE_SIZE, "filter": f});
                    self.call(Method::POST, query_url.clone(), Some(&body))
                        .await?
                }
            };
            let Some(items) = v.get("items").and_then(Value::as_array) else {
                return Err(rejected(format!(
                    "{VENDOR} {entity}/query: the answer has no items"
                )));
            };
            if items.is_empty() {
                return Ok(out);
            }
            max_seen = items
                .iter()
                .filter_map(|i| i.get("id").and_then(Value::as_i64))
                .chain(max_seen)
                .max();
            out.extend(items.iter().filter_map(&map));
            let Some(next_url) = v
                .pointer("/pageDetails/nextPageUrl")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|u| !u.is_empty())
            else {
                return Ok(out);
            };
            match follow_next_page(api.ep.origin(), next_url) {
                Some(u) => next = Some(u),
                None => {
                    // Never send credentials elsewhere: continue by id (results are ordered
                    // by id; UNCONFIRMED for the real API, see PSA-API-NOTES §2.2).
                    tracing::warn!(
                        entity,
                        "Autotask nextPageUrl is not on the API origin; paging by id instead"
                    );
                    match max_seen {
                        Some(m) if after.is_none_or(|a| m > a) => after = Some(m),
                        _ => {
                            return Err(rejected(format!(
                                "{VENDOR} {entity}/query: cannot page further (no id progress)"
                            )))
                        }
                    }
                }
            }
        }
        Err(rejected(format!(
            "{VENDOR} {entity}/query: more than {MAX_PAGES} pages"
        )))
    }

    /// `field in (ids)` in batches of 500, each with `extra` filters.
    async fn query_in<T>(
        &self,
        entity: &str,
        field: &str,
        ids: &[String],
        extra: &[Value],
        map: impl Fn(&Value) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let numeric: Vec<i64> = ids
            .iter()
            .filter_map(|s| s.trim().parse::<i64>().ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for chunk in numeric.chunks(IDS_PER_QUERY) {
            let mut f = extra.to_vec();
            f.push(if chunk.len() == 1 {
                json!({"op": "eq", "field": field, "value": chunk[0]})
            } else {
                json!({"op": "in", "field": field, "value": chunk})
            });
            out.extend(self.query(entity, &f, &map).await?);
        }
        Ok(out)
    }

    /// The active records of `entity` by id and name (Services, BillingCodes).
    async fn active_names(&self, entity: &str) -> PortResult<Vec<ProductRef>> {
        self.query(
            entity,
            &[json!({"op": "eq", "field": "isActive", "value": true})],
            |v| {
                Some(ProductRef {
                    id: s(v, "id")?,
                    identifier: s(v, "name").unwrap_or_default(),
                })
            },
        )
        .await
    }

    // --- metadata --------------------------------------------------------------------------

    async fn picklists(&self, entity: &str, refresh: bool) -> PortResult<Arc<Picklists>> {
        let api = self.api().await?;
        let key = format!("{}|{entity}", api.key);
        if !refresh {
            if let Some(p) = cache_get(&PICKLISTS, &key) {
                return Ok(p);
            }
        }
        let url = api.ep.url(&format!("{entity}/entityInformation/fields"))?;
        let v = self.call(Method::GET, url, None).await?;
        let mut out = Picklists::new();
        for f in v
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(values)) = (
                f.get("name").and_then(Value::as_str),
                f.get("picklistValues").and_then(Value::as_array),
            ) else {
                continue;
            };
            out.insert(name.to_ascii_lowercase(), picklist_values(values));
        }
        let out = Arc::new(out);
        cache_put(&PICKLISTS, key, out.clone());
        Ok(out)
    }

    async fn udfs(&self, entity: &str, refresh: bool) -> PortResult<Arc<Vec<UdfDef>>> {
        let api = self.api().await?;
        let key = format!("{}|{entity}", api.key);
        if !refresh {
            if let Some(u) = cache_get(&UDFS, &key) {
                return Ok(u);
            }
        }
        let url = api
            .ep
            .url(&format!("{entity}/entityInformation/userDefinedFields"))?;
        let v = self.call(Method::GET, url, None).await?;
        let out: Vec<UdfDef> = v
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some(UdfDef {
                    name: f.get("name").and_then(Value::as_str)?.to_owned(),
                    picklist: f
                        .get("picklistValues")
                        .and_then(Value::as_array)
                        .map(|v| picklist_values(v)),
                })
            })
            .collect();
        let out = Arc::new(out);
        cache_put(&UDFS, key, out.clone());
        Ok(out)
    }

    /// The values of a picklist field (e.g. `("Services", "periodType")`), from the tenant.
    pub async fn picklist(&self, entity: &str, field: &str) -> PortResult<Vec<PicklistValue>> {
        let lists = self.picklists(entity, false).await?;
        match lists.get(&field.to_ascii_lowercase()) {
            Some(l) => Ok(l.clone()),
            None => Ok(self
                .picklists(entity, true)
                .await?
                .get(&field.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()),
        }
    }

    /// The value of a picklist label (case-insensitive), re-reading the picklist once when the
    /// label is not known yet.
    pub async fn picklist_value(
        &self,
        entity: &str,
        field: &str,
        label: &str,
    ) -> PortResult<String> {
        for refresh in [false, true] {
            let lists = self.picklists(entity, refresh).await?;
            if let Some(v) = lists
                .get(&field.to_ascii_lowercase())
                .and_then(|l| l.iter().find(|p| p.label.eq_ignore_ascii_case(label)))
            {
                return Ok(v.value.clone());
            }
        }
        Err(rejected(format!(
            "{VENDOR} {entity}.{field} has no picklist value labelled {label:?}"
        )))
    }

    /// Services.periodType (Monthly, Quarterly, Semi-Annual, Yearly in a default tenant).
    pub async fn period_types(&self) -> PortResult<Vec<PicklistValue>> {
        self.picklist("Services", "periodType").await
    }

    /// Labels of `values` in a picklist; re-reads the picklist once when one is missing.
    async fn labels(
        &self,
        entity: &str,
        field: &str,
        values: &BTreeSet<String>,
    ) -> PortResult<HashMap<String, String>> {
        let key = field.to_ascii_lowercase();
        let mut lists = self.picklists(entity, false).await?;
        let known = |l: &Picklists, v: &String| {
            l.get(&key).is_some_and(|p| p.iter().any(|x| &x.value == v))
        };
        if !values.iter().all(|v| known(&lists, v)) {
            lists = self.picklists(entity, true).await?;
        }
        Ok(lists
            .get(&key)
            .map(|l| {
                l.iter()
                    .map(|p| (p.value.clone(), p.label.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn contract_ctx(&self) -> PortResult<ContractCtx> {
        let active = self
            .picklist_value("Contracts", "status", CONTRACT_ACTIVE)
            .await?;
        let field = self.cfg.payg_field.clone();
        let mut payg = PaygDef::Missing;
        for refresh in [false, true] {
            let defs = self.udfs("Contracts", refresh).await?;
            if let Some(d) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(&field)) {
                payg = match &d.picklist {
                    Some(p) => PaygDef::Picklist(p.clone()),
                    None => PaygDef::Text,
                };
                break;
            }
        }
        Ok(ContractCtx {
            active,
            field,
            payg,
        })
    }

    // --- lines -----------------------------------------------------------------------------

    /// The lines of these contracts: their ContractServices with the units of the period
    /// containing today (ContractServiceUnits), both read in batches.
    async fn lines_of(&self, contract_ids: &[String]) -> PortResult<HashMap<String, Vec<Line>>> {
        let services = self
            .query_in("ContractServices", "contractID", contract_ids, &[], |v| {
                Some((s(v, "id")?, s(v, "contractID")?, s(v, "serviceID")?))
            })
            .await?;
        let mut out: HashMap<String, Vec<Line>> = contract_ids
            .iter()
            .map(|id| (id.trim().to_owned(), Vec::new()))
            .collect();
        if services.is_empty() {
            return Ok(out);
        }
        let today = at_date((self.cfg.today)());
        let current = [
            json!({"op": "lte", "field": "startDate", "value": today}),
            json!({"op": "gte", "field": "endDate", "value": today}),
        ];
        let cs_ids: Vec<String> = services.iter().map(|(id, _, _)| id.clone()).collect();
        let units = self
            .query_in(
                "ContractServiceUnits",
                "contractServiceID",
                &cs_ids,
                &current,
                |v| {
                    Some((
                        s(v, "contractServiceID")?,
                        v.get("units").and_then(Value::as_f64).unwrap_or(0.0),
                        date(v, "startDate"),
                    ))
                },
            )
            .await?;
        // One unit record per period; should two cover today, the later start wins.
        let mut by_service: HashMap<String, (f64, Option<NaiveDate>)> = HashMap::new();
        for (cs, n, start) in units {
            match by_service.get(&cs) {
                Some((_, s0)) if *s0 >= start => {}
                _ => {
                    by_service.insert(cs, (n, start));
                }
            }
        }
        for (id, contract, service) in services {
            let (quantity, effective_date) = by_service.get(&id).cloned().unwrap_or((0.0, None));
            out.entry(contract.clone()).or_default().push(Line {
                id,
                agreement_id: contract,
                product_id: service,
                quantity,
                less_included: 0.0,
                effective_date,
                cancelled_date: None,
            });
        }
        Ok(out)
    }

    async fn contact_of(&self, company_ids: &[String]) -> PortResult<HashMap<String, Contact>> {
        let contacts = self
            .query_in(
                "Contacts",
                "companyID",
                company_ids,
                &[json!({"op": "eq", "field": "primaryContact", "value": true})],
                |v| {
                    Some((
                        s(v, "companyID")?,
                        truthy(v, "isActive"),
                        Contact {
                            first_name: s(v, "firstName").unwrap_or_default(),
                            last_name: s(v, "lastName").unwrap_or_default(),
                            email: s(v, "emailAddress").filter(|e| !e.trim().is_empty()),
                        },
                    ))
                },
            )
            .await?;
        let mut out: HashMap<String, (bool, Contact)> = HashMap::new();
        for (company, active, contact) in contacts {
            // An active primary contact wins over an inactive one.
            if out.get(&company).is_none_or(|(a, _)| !a && active) {
                out.insert(company, (active, contact));
            }
        }
        Ok(out.into_iter().map(|(k, (_, c))| (k, c)).collect())
    }
}

fn zone_unknown() -> PortError {
    PortError::Credentials {
        system: System::Psa,
        message: format!(
            "{VENDOR} zone information could not be determined — check the API user name \
             (the API-only user's e-mail address)"
        ),
    }
}

fn picklist_values(values: &[Value]) -> Vec<PicklistValue> {
    values
        .iter()
        .filter_map(|p| {
            Some(PicklistValue {
                value: s(p, "value")?,
                label: s(p, "label")?,
                is_active: p.get("isActive").and_then(Value::as_bool).unwrap_or(true),
            })
        })
        .collect()
}

/// Replaces every case-insensitive (ASCII) occurrence of `needle`.
fn replace_ci(hay: &str, needle: &str, with: &str) -> String {
    let lower_hay = hay.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    if lower_needle.is_empty() || lower_hay.len() != hay.len() {
        return hay.replace(needle, with);
    }
    let mut out = String::with_capacity(hay.len());
    let mut i = 0;
    while let Some(pos) = lower_hay[i..].find(&lower_needle) {
        out.push_str(&hay[i..i + pos]);
        out.push_str(with);
        i += pos + needle.len();
    }
    out.push_str(&hay[i..]);
    out
}

/// A company as read, before its type label and primary contact are known.
struct RawCompany {
    id: String,
    number: Option<String>,
    name: String,
    company_type: Option<String>,
    active: bool,
    updated_at: Option<DateTime<Utc>>,
}

fn raw_company(v: &Value) -> Option<RawCompany> {
    Some(RawCompany {
        id: s(v, "id")?,
        number: s(v, "companyNumber").filter(|n| !n.trim().is_empty()),
        name: s(v, "companyName").unwrap_or_default(),
        company_type: s(v, "companyType"),
        active: truthy(v, "isActive"),
        updated_at: s(v, "lastTrackedModifiedDateTime").and_then(|t| parse_time(&t)),
    })
}

/// The value of a UDF on a record (`userDefinedFields: [{name, value}]`).
fn udf_value(v: &Value, name: &str) -> Option<String> {
    v.get("userDefinedFields")?
        .as_array()?
        .iter()
        .find(|u| {
            u.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|u| s(u, "value"))
}

fn agreement_from(v: &Value, ctx: &ContractCtx) -> Option<Agreement> {
    let id = s(v, "id")?;
    let name = s(v, "contractName").unwrap_or_default();
    let field = &ctx.field;
    let (payg_flag, problem) = match &ctx.payg {
        PaygDef::Missing => (
            None,
            Some(format!(
                "contract {id} ({name}): the contract user-defined field {field:?} that marks \
                 PAYG contracts does not exist in Autotask — create it or configure its name; \
                 the contract is not classified as PAYG or prepaid (R-PROV-3)"
            )),
        ),
        def => {
            let raw = udf_value(v, field);
            let shown = match (def, &raw) {
                (PaygDef::Picklist(p), Some(r)) => p
                    .iter()
                    .find(|x| &x.value == r)
                    .map(|x| x.label.clone())
                    .or(raw.clone()),
                _ => raw.clone(),
            };
            match payg_value(shown.as_deref()) {
                Ok(flag) => (flag, None),
                Err(bad) => (
                    None,
                    Some(format!(
                        "contract {id} ({name}): its {field:?} field is {bad:?}, neither yes nor \
                         no — set it to Yes (PAYG) or No (prepaid); the contract is not \
                         classified until then (R-PROV-3)"
                    )),
                ),
            }
        }
    };
    Some(Agreement {
        company_id: s(v, "companyID")?,
        name,
        start_date: date(v, "startDate"),
        end_date: date(v, "endDate"),
        no_end_date: false,
        cancelled: s(v, "status").as_deref() != Some(ctx.active.as_str()),
        cancelled_date: None,
        payg_flag,
        updated_at: s(v, "lastModifiedDateTime").and_then(|t| parse_time(&t)),
        problem,
        id,
    })
}

#[async_trait]
impl PsaDirectory for Autotask {
    /// R-SET-3/R-SET-4: zone discovery, then an authenticated call (`ThresholdInformation`,
    /// which Autotask does not count against the threshold).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = "autotask")
    )]
    async fn check_login(&self) -> PortResult<()> {
        self.api().await?;
        self.threshold().await.map(|_| ())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = "autotask",
            ids = q.ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn companies(&self, q: &CompanyQuery) -> PortResult<Vec<PsaCompany>> {
        let mut filters = Vec::new();
        if let Some(t) = q.changed_since {
            filters.push(json!({
                "op": "gt", "field": "lastTrackedModifiedDateTime", "value": at_format(t)
            }));
        }
        let raw = if q.ids.is_empty() {
            self.query("Companies", &filters, raw_company).await?
        } else {
            self.query_in("Companies", "id", &q.ids, &filters, raw_company)
                .await?
        };
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let types: BTreeSet<String> = raw.iter().filter_map(|c| c.company_type.clone()).collect();
        let labels = self.labels("Companies", "companyType", &types).await?;
        let ids: Vec<String> = raw.iter().map(|c| c.id.clone()).collect();
        let mut contacts = self.contact_of(&ids).await?;
        Ok(raw
            .into_iter()
            .map(|c| PsaCompany {
                identifier: c.number.unwrap_or_else(|| c.id.clone()),
                name: c.name,
                types: c
                    .company_type
                    .map(|t| labels.get(&t).cloned().unwrap_or(t))
                    .into_iter()
                    .collect(),
                status: Some(if c.active { "Active" } else { "Inactive" }.to_owned()),
                active: c.active,
                primary_contact: contacts.remove(&c.id),
                updated_at: c.updated_at,
                id: c.id,
            })
            .collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = "autotask",
            companies = q.company_ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn agreements(&self, q: &AgreementQuery) -> PortResult<Vec<Agreement>> {
        let recurring = self
            .picklist_value("Contracts", "contractType", RECURRING_SERVICE)
            .await?;
        let ctx = self.contract_ctx().await?;
        let recurring = recurring
            .parse::<i64>()
            .map_or_else(|_| Value::from(recurring.clone()), Value::from);
        let mut filters = vec![json!({"op": "eq", "field": "contractType", "value": recurring})];
        if let Some(t) = q.changed_since {
            filters.push(json!({
                "op": "gt", "field": "lastModifiedDateTime", "value": at_format(t)
            }));
        }
        let map = |v: &Value| agreement_from(v, &ctx);
        let out = if q.company_ids.is_empty() {
            self.query("Contracts", &filters, map).await?
        } else {
            self.query_in("Contracts", "companyID", &q.company_ids, &filters, map)
                .await?
        };
        if self.cfg.limits.prefetch_lines && q.changed_since.is_none() {
            let active: Vec<String> = out
                .iter()
                .filter(|a| !a.cancelled)
                .map(|a| a.id.clone())
                .collect();
            let lines = if active.is_empty() {
                HashMap::new()
            } else {
                self.lines_of(&active).await?
            };
            *self.st.prefetched.lock().unwrap_or_else(|e| e.into_inner()) = lines;
        }
        Ok(out)
    }

    /// The contract's services with their current units. Lines read in advance by
    /// `agreements` are handed out once; a second call reads them again.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = "autotask", agreement = %agreement_id)
    )]
    async fn lines(&self, agreement_id: &str) -> PortResult<Vec<Line>> {
        let id = agreement_id.trim();
        if let Some(lines) = self
            .st
            .prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
        {
            return Ok(lines);
        }
        if id.parse::<i64>().is_err() {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} contract {id:?} is not a contract id"),
            });
        }
        Ok(self
            .lines_of(&[id.to_owned()])
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = "autotask")
    )]
    async fn products(&self) -> PortResult<Vec<ProductRef>> {
        self.active_names("Services").await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = "autotask", company = %company_id)
    )]
    async fn primary_contact(&self, company_id: &str) -> PortResult<Option<Contact>> {
        Ok(self
            .contact_of(&[company_id.to_owned()])
            .await?
            .remove(company_id.trim()))
    }
}

#[async_trait]
impl ContractWriter for Autotask {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = "autotask")
    )]
    async fn allocation_codes(&self) -> PortResult<Vec<ProductRef>> {
        self.active_names("BillingCodes").await
    }

    /// `POST Services` with the two-way defaults: allocation code (`billingCodeID`) and period
    /// type (picklist value by its label).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = "autotask", product = %name)
    )]
    async fn create_product(
        &self,
        name: &str,
        defaults: &domain::model::TwoWaySettings,
    ) -> PortResult<ProductRef> {
        let period = self
            .picklist_value("Services", "periodType", defaults.period_type.label())
            .await?;
        let mut body = json!({
            "name": name.trim(),
            "periodType": period.parse::<i64>().map(Value::from).unwrap_or(Value::from(period)),
            "unitPrice": 0.0,
            "isActive": true,
        });
        if let Some(code) = &defaults.allocation_code {
            body["billingCodeID"] = json!(numeric_id("allocation code", &code.id)?);
        }
        let api = self.api().await?;
        let v = self
            .write(Method::POST, api.ep.url("Services")?, &body)
            .await?;
        Ok(ProductRef {
            id: item_id(&v, "Services")?,
            identifier: name.trim().to_owned(),
        })
    }

    /// `POST Contracts/{id}/Services` with the service's own unit price (units start at 0).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(
            partner = %self.partner,
            system = "autotask",
            agreement = %agreement_id,
            product = %product_id,
        )
    )]
    async fn add_line(&self, agreement_id: &str, product_id: &str) -> PortResult<String> {
        let contract = numeric_id("contract", agreement_id)?;
        let service = numeric_id("service", product_id)?;
        let api = self.api().await?;
        let v = self
            .call(
                Method::GET,
                api.ep.url(&format!("Services/{service}"))?,
                None,
            )
            .await?;
        let Some(item) = v.get("item").filter(|i| !i.is_null()) else {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} service {service} does not exist"),
            });
        };
        let body = json!({
            "contractID": contract,
            "serviceID": service,
            "unitPrice": item.get("unitPrice").and_then(Value::as_f64).unwrap_or(0.0),
        });
        let url = api.ep.url(&format!("Contracts/{contract}/Services"))?;
        let v = self.write(Method::POST, url, &body).await?;
        item_id(&v, "Contracts/Services")
    }

    /// Reads the line's units for today and posts one `ContractServiceAdjustment` for the
    /// difference (none when equal): repeating it never doubles a change.
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(
            partner = %self.partner,
            system = "autotask",
            agreement = %agreement_id,
            line = %line_id,
            quantity = quantity,
        )
    )]
    async fn set_line_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: Option<f64>,
        quantity: f64,
    ) -> PortResult<()> {
        let contract = numeric_id("contract", agreement_id)?;
        let lines = self
            .lines_of(&[contract.to_string()])
            .await?
            .remove(&contract.to_string())
            .unwrap_or_default();
        let Some(line) = lines.iter().find(|l| l.id == line_id.trim()) else {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} contract {contract} has no contract service {line_id}"),
            });
        };
        let change = (quantity - line.quantity).round();
        if change == 0.0 {
            return Ok(());
        }
        if from.is_some_and(|f| (line.quantity - f).abs() > 1e-9) {
            return Err(PortError::Conflict {
                system: System::Psa,
                message: format!(
                    "{VENDOR} contract service {line_id} of contract {contract} holds {} units, \
                     not the {} this run read: changed in the PSA meanwhile",
                    line.quantity,
                    from.unwrap_or_default()
                ),
            });
        }
        let body = json!({
            "contractID": contract,
            "contractServiceID": numeric_id("contract service", line_id)?,
            "serviceID": numeric_id("service", &line.product_id)?,
            "unitChange": change as i64,
            "effectiveDate": at_date((self.cfg.today)()),
        });
        let api = self.api().await?;
        let url = api
            .ep
            .url(&format!("Contracts/{contract}/ServiceAdjustments"))?;
        self.write(Method::POST, url, &body).await?;
        Ok(())
    }
}

fn numeric_id(what: &str, id: &str) -> PortResult<i64> {
    id.trim().parse::<i64>().map_err(|_| PortError::NotFound {
        system: System::Psa,
        message: format!("{VENDOR} {what} {id:?} is not an id"),
    })
}

/// The `itemId` of a create answer.
fn item_id(v: &Value, what: &str) -> PortResult<String> {
    v.get("itemId")
        .and_then(|i| {
            i.as_i64()
                .map(|n| n.to_string())
                .or(i.as_str().map(str::to_owned))
        })
        .ok_or_else(|| rejected(format!("{VENDOR} {what}: the answer has no itemId")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_urls_elsewhere_are_not_followed() {
        let api = Url::parse("https://webservices5.autotask.net/ATServicesRest/V1.0/").unwrap();
        let same =
            "https://webservices5.autotask.net/ATServicesRest/V1.0/Companies/query?paging=%7B%7D";
        assert_eq!(
            follow_next_page(&api, same).map(|u| u.to_string()),
            Some(same.to_owned())
        );
        for other in [
            "https://evil.example/ATServicesRest/V1.0/Companies/query?paging=%7B%7D",
            "http://webservices5.autotask.net/ATServicesRest/V1.0/Companies/query",
            "https://webservices5.autotask.net:8443/ATServicesRest/V1.0/Companies/query",
            "https://webservices5.autotask.net.evil.example/ATServicesRest/V1.0/x",
            "/ATServicesRest/V1.0/Companies/query",
            "not a url",
        ] {
            assert!(follow_next_page(&api, other).is_none(), "{other}");
        }
    }

    #[test]
    fn r_set_3_discovered_zones_must_be_autotask_hosts() {
        let prod = zone_base_url(PRODUCTION_ZONE_URL).unwrap();
        let ok = |u: &str| zone_url_allowed(&prod, &Url::parse(u).unwrap());
        assert!(ok("https://webservices5.autotask.net/ATServicesRest/"));
        assert!(ok("https://webservices.autotask.net/ATServicesRest/"));
        assert!(!ok("http://webservices5.autotask.net/ATServicesRest/"));
        assert!(!ok(
            "https://webservices5.autotask.net.evil.example/ATServicesRest/"
        ));
        assert!(!ok("https://evil.example/ATServicesRest/"));
        assert!(!ok("https://127.0.0.1/ATServicesRest/"));
        let local = zone_base_url("http://127.0.0.1:4000").unwrap();
        assert!(zone_url_allowed(
            &local,
            &Url::parse("http://127.0.0.1:4000/ATServicesRest/").unwrap()
        ));
        assert!(!zone_url_allowed(
            &local,
            &Url::parse("http://127.0.0.1:4001/ATServicesRest/").unwrap()
        ));
        assert!(zone_base_url("http://zones.example.com/").is_err());
    }

    #[test]
    fn r_prov_3_payg_values() {
        for yes in ["Yes", "TRUE", "1", "PAYG", " y "] {
            assert_eq!(payg_value(Some(yes)), Ok(Some(true)), "{yes}");
        }
        for no in ["No", "false", "0", "Prepaid"] {
            assert_eq!(payg_value(Some(no)), Ok(Some(false)), "{no}");
        }
        assert_eq!(payg_value(None), Ok(None));
        assert_eq!(payg_value(Some("  ")), Ok(None));
        assert_eq!(payg_value(Some("maybe")), Err("maybe".to_owned()));
        assert_eq!(payg_value(Some("PAYG+PRE")), Err("PAYG+PRE".to_owned()));
    }

    #[test]
    fn r_rel_1_only_server_failures_are_retried() {
        let s500 = StatusCode::INTERNAL_SERVER_ERROR;
        assert!(retryable(
            s500,
            r#"{"errors":["An unexpected error has occurred. Please try again."]}"#
        ));
        assert!(retryable(s500, "<html>oops</html>"));
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE, "{}"));
        assert!(!retryable(
            s500,
            r#"{"errors":["IntegrationCode is invalid."]}"#
        ));
        assert!(!retryable(
            s500,
            r#"{"errors":["Unable to find field 'nope' in the Company entity."]}"#
        ));
        assert!(!retryable(StatusCode::UNAUTHORIZED, "{}"));
    }

    #[test]
    fn entity_of_names_the_endpoint() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            entity_of(&u("http://h/ATServicesRest/V1.0/Companies/query?x=1")),
            "Companies"
        );
        assert_eq!(
            entity_of(&u(
                "http://h/atservicesrest/v1.0/contractServiceUnits/query"
            )),
            "contractServiceUnits"
        );
        assert_eq!(
            entity_of(&u("http://h/ATServicesRest/V1.0/ThresholdInformation")),
            "ThresholdInformation"
        );
    }

    #[test]
    fn r_set_2_credentials_are_scrubbed_case_insensitively() {
        assert_eq!(
            replace_ci("User 'API@Acme.example' is not", "api@acme.example", "[x]"),
            "User '[x]' is not"
        );
        assert_eq!(replace_ci("aXa", "x", "-"), "a-a");
    }

    #[test]
    fn autotask_times_parse_with_and_without_zone() {
        let t = parse_time("2026-11-22T10:20:30").unwrap();
        assert_eq!(at_format(t), "2026-11-22T10:20:30");
        assert_eq!(
            parse_time("2026-11-22T10:20:30.123").unwrap().timestamp(),
            t.timestamp()
        );
        assert_eq!(parse_time("2026-11-22T10:20:30Z"), Some(t));
    }
}
