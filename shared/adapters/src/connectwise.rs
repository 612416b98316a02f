//! ConnectWise Manage REST 3.0. Every ConnectWise URL of the product is in this file.
//!
//! - Codebase discovery: `GET {site}/login/companyinfo/{companyId}` (no auth), then the API base
//!   `{site}/{Codebase}apis/3.0/`; re-discovered once after a 404.
//! - Auth: Basic `base64("{companyId}+{publicKey}:{privateKey}")` and the `clientId` header.
//! - Lists: forward-only paging (`pagination-type: forward-only`, `pageId`, 1000 per page),
//!   `conditions` with `lastUpdated > [..]` for incremental reads.
//! - Errors: `{code, message, errors}`; 429 with `Retry-After` (see [`crate::http`]).

use crate::http::{
    is_loopback, parse_day, parse_time, snippet, Endpoint, ErrorDialect, Forbidden, HttpSettings,
    Idempotency, Pages,
};
use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use domain::model::{Agreement, Contact, Line, ProductRef, PsaCompany};
use domain::ports::{AgreementQuery, CompanyQuery, LineQuantities, PsaDirectory};
use domain::rules::settings::ConnectWiseCredentials;
use domain::{PortError, PortResult, System};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::RwLock;
use url::Url;

/// The `system` field of this adapter's log lines.
const LOG_SYSTEM: &str = "connectwise";

const PAGE_SIZE: usize = 1000;
/// Ids per `in (…)` condition, keeping URLs well under 2,000 characters.
const IDS_PER_QUERY: usize = 100;
/// The model version we are written against.
const ACCEPT: &str = "application/vnd.connectwise.com+json; version=2025.1";

/// A ConnectWise Manage client for one partner.
#[derive(Clone)]
pub struct ConnectWise {
    /// The partner this client acts for (in every log line of its calls).
    partner: Arc<str>,
    ep: Endpoint,
    company_id: String,
    auth: Arc<SecretString>,
    client_id: String,
    base: Arc<RwLock<Option<Url>>>,
}

#[derive(Deserialize)]
struct CompanyInfo {
    #[serde(rename = "Codebase")]
    codebase: Option<String>,
}

/// `site` as given by the operator: a host (`api-na.myconnectwise.net`) or a URL.
pub fn site_url(site: &str) -> Result<Url, String> {
    let s = site.trim().trim_end_matches('/');
    let with_scheme = if s.starts_with("https://") || s.starts_with("http://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    };
    let u = Url::parse(&format!("{with_scheme}/"))
        .map_err(|e| format!("ConnectWise site {site:?} is not a host name or URL: {e}"))?;
    if u.scheme() == "http" && !is_loopback(&u) {
        return Err(format!("ConnectWise site {site:?} must use https"));
    }
    Ok(u)
}

impl ConnectWise {
    pub fn new(
        creds: &ConnectWiseCredentials,
        client: reqwest::Client,
        settings: &HttpSettings,
    ) -> PortResult<Self> {
        let origin = site_url(&creds.site).map_err(|message| PortError::Rejected {
            system: System::Psa,
            message,
        })?;
        let basic = format!(
            "{}+{}:{}",
            creds.company_id,
            creds.public_key.expose_secret(),
            creds.private_key.expose_secret()
        );
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(basic)
        );
        Ok(ConnectWise {
            partner: Arc::from(""),
            ep: Endpoint::new(System::Psa, "ConnectWise", client, origin, settings),
            company_id: creds.company_id.clone(),
            auth: Arc::new(SecretString::from(auth)),
            client_id: creds.client_id.clone(),
            base: Arc::new(RwLock::new(None)),
        })
    }

    /// The partner this client acts for, named in the logs of its calls.
    pub fn for_partner(mut self, partner: &str) -> Self {
        self.partner = Arc::from(partner);
        self
    }

    pub fn counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.ep.counter()
    }

    /// Codebase discovery; cached until a 404 asks for it again.
    async fn base(&self, refresh: bool) -> PortResult<Url> {
        if !refresh {
            if let Some(b) = self.base.read().await.clone() {
                return Ok(b);
            }
        }
        let url = self
            .ep
            .url(&format!("login/companyinfo/{}", self.company_id))?;
        let answer = self
            .ep
            .send(&CwErrors, Idempotency::Safe, || {
                self.ep.request(Method::GET, url.clone())
            })
            .await?;
        let status = answer.status;
        let text = answer.text();
        if !status.is_success() {
            return Err(PortError::Transient {
                system: System::Psa,
                message: format!(
                    "ConnectWise codebase discovery answered {status}: {}",
                    snippet(&text)
                ),
            });
        }
        let info: Option<CompanyInfo> =
            serde_json::from_str(&text).map_err(|e| PortError::Rejected {
                system: System::Psa,
                message: format!("ConnectWise codebase discovery returned an unexpected body: {e}"),
            })?;
        let Some(codebase) = info.and_then(|i| i.codebase) else {
            return Err(PortError::Credentials {
                system: System::Psa,
                message: format!(
                    "ConnectWise does not know the company id {:?} on this site — check the site and company id",
                    self.company_id
                ),
            });
        };
        let codebase = if codebase.ends_with('/') {
            codebase
        } else {
            format!("{codebase}/")
        };
        let base = self.ep.url(&format!("{codebase}apis/3.0/"))?;
        *self.base.write().await = Some(base.clone());
        Ok(base)
    }

    fn authed(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.ep
            .request(method, url)
            .header("Authorization", self.auth.expose_secret())
            .header("clientId", &self.client_id)
            .header("Accept", ACCEPT)
    }

    /// GET one API path (relative to the base) as JSON.
    async fn get_json(
        &self,
        path_and_query: &str,
        extra: &[(&str, &str)],
    ) -> PortResult<(Value, Option<String>)> {
        self.get_typed(path_and_query, extra).await
    }

    /// GET one API path (relative to the base) and parse it into `W`, mapping errors; also
    /// returns the `Link` header.
    async fn get_typed<W: DeserializeOwned>(
        &self,
        path_and_query: &str,
        extra: &[(&str, &str)],
    ) -> PortResult<(W, Option<String>)> {
        let mut refreshed = false;
        loop {
            let base = self.base(refreshed).await?;
            let url = base.join(path_and_query).map_err(|e| PortError::Rejected {
                system: System::Psa,
                message: format!("bad ConnectWise path {path_and_query}: {e}"),
            })?;
            self.ep.same_origin(&url)?;
            let answer = self
                .ep
                .send(&CwErrors, Idempotency::Safe, || {
                    let mut rb = self.authed(Method::GET, url.clone());
                    for (k, v) in extra {
                        rb = rb.header(*k, *v);
                    }
                    rb
                })
                .await?;
            let status = answer.status;
            let link = answer.header("Link").map(str::to_owned);
            let body = answer.body;
            if status == StatusCode::NOT_FOUND && !refreshed {
                // On cloud a 404 can mean the codebase moved: discover it again, once.
                refreshed = true;
                continue;
            }
            if !status.is_success() {
                return Err(error_from(
                    status,
                    &String::from_utf8_lossy(&body),
                    path_and_query,
                ));
            }
            let v: W = serde_json::from_slice(&body)
                .map_err(|e| CwErrors.unexpected_body(path_and_query, e))?;
            return Ok((v, link));
        }
    }

    /// Every record of a list, forward-only paging by id; each page is mapped at once, so only
    /// one page is held as JSON.
    async fn list_all<W: DeserializeOwned + HasId, T>(
        &self,
        resource: &str,
        conditions: Option<&str>,
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let mut out = Vec::new();
        let mut page_id: Option<i64> = None;
        let mut pages = Pages::new(System::Psa, format!("ConnectWise {resource}"));
        loop {
            let path = {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("pageSize", &PAGE_SIZE.to_string());
                if let Some(c) = conditions {
                    q.append_pair("conditions", c);
                }
                if let Some(p) = page_id {
                    q.append_pair("pageId", &p.to_string());
                }
                format!("{resource}?{}", q.finish())
            };
            let (items, link): (Vec<W>, _) = self
                .get_typed(&path, &[("pagination-type", "forward-only")])
                .await?;
            let n = items.len();
            let last_id = items.last().and_then(HasId::id);
            out.extend(items.into_iter().filter_map(&map));
            let next = link.as_deref().and_then(next_page_id);
            match (next, last_id) {
                (Some(next), _) if n > 0 => {
                    pages.next(&next.to_string())?;
                    page_id = Some(next)
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn list_by_ids<W: DeserializeOwned + HasId, T>(
        &self,
        resource: &str,
        field: &str,
        ids: &[String],
        extra: Option<&str>,
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let numeric: Vec<&str> = chunk
                .iter()
                .map(String::as_str)
                .filter(|s| s.parse::<i64>().is_ok())
                .collect();
            if numeric.is_empty() {
                continue;
            }
            let mut cond = format!("{field} in ({})", numeric.join(","));
            if let Some(e) = extra {
                cond = format!("({cond}) and {e}");
            }
            out.extend(self.list_all(resource, Some(&cond), &map).await?);
        }
        Ok(out)
    }

    /// The records whose `field` is one of `ids`, or every record when `ids` is empty; `extra`
    /// conditions on both.
    async fn list_for<W: DeserializeOwned + HasId, T>(
        &self,
        resource: &str,
        field: &str,
        ids: &[String],
        extra: Option<&str>,
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        if ids.is_empty() {
            self.list_all(resource, extra, map).await
        } else {
            self.list_by_ids(resource, field, ids, extra, map).await
        }
    }

    /// The primary contact of a company with its e-mail (for the activation e-mail).
    async fn contact(&self, contact_id: &str) -> PortResult<Option<Contact>> {
        match self
            .get_json(&format!("company/contacts/{contact_id}"), &[])
            .await
        {
            Ok((v, _)) => Ok(Some(contact_from(&v))),
            Err(PortError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The `pageId` of the `rel="next"` link of an RFC 5988 `Link` header.
fn next_page_id(link: &str) -> Option<i64> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        if !rel.contains("next") {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let parsed = Url::parse(url).ok()?;
        let id = parsed
            .query_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case("pageId"))?
            .1
            .parse()
            .ok();
        id
    })
}

/// How ConnectWise error answers read: `{code, message, errors: [{code, message}]}`.
struct CwErrors;

impl ErrorDialect for CwErrors {
    const SYSTEM: System = System::Psa;
    const VENDOR: &'static str = "ConnectWise";

    /// The message, with the messages of `errors` after it.
    fn message(&self, body: &str) -> Option<String> {
        let v: Value = serde_json::from_str(body).ok()?;
        let message = v.get("message").and_then(Value::as_str).map(str::to_owned);
        let details: Vec<&str> = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if details.is_empty() {
            return message;
        }
        let message = message.unwrap_or_else(|| snippet(body));
        Some(format!("{message}: {}", details.join("; ")))
    }

    fn unauthorized(&self) -> &'static str {
        "check the API member's public/private keys and the clientId"
    }

    fn forbidden(&self) -> Forbidden {
        Forbidden::Credentials("the API member's security role lacks this permission")
    }
}

fn error_from(status: StatusCode, body: &str, what: &str) -> PortError {
    CwErrors.classify(status, body, what)
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn contact_from(v: &Value) -> Contact {
    let email = v
        .get("communicationItems")
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .filter(|i| {
                    i.get("communicationType").and_then(Value::as_str) == Some("Email")
                        || s(i, &["type", "name"]).is_some_and(|n| n.eq_ignore_ascii_case("email"))
                })
                .max_by_key(|i| {
                    i.get("defaultFlag")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .and_then(|i| s(i, &["value"]))
        })
        .or_else(|| s(v, &["email"]));
    Contact {
        first_name: s(v, &["firstName"]).unwrap_or_default(),
        last_name: s(v, &["lastName"]).unwrap_or_default(),
        email,
    }
}

/// Records of a list have an id (forward-only paging continues after the last one).
trait HasId {
    fn id(&self) -> Option<i64>;
}

impl HasId for Value {
    fn id(&self) -> Option<i64> {
        self.get("id").and_then(Value::as_i64)
    }
}

/// A reference (`{id, name}` / `{id, identifier}`).
#[derive(Deserialize, Default)]
struct WireRef {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireInfo {
    #[serde(default, rename = "lastUpdated")]
    last_updated: Option<String>,
}

/// The fields of a company we use; the rest is skipped while parsing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCompany {
    id: i64,
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<WireRef>,
    #[serde(default)]
    types: Option<Vec<WireRef>>,
    #[serde(default)]
    deleted_flag: Option<bool>,
    #[serde(default)]
    default_contact: Option<WireRef>,
    #[serde(default, rename = "_info")]
    info: Option<WireInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAgreement {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    company: Option<WireRef>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    no_ending_date_flag: Option<bool>,
    #[serde(default)]
    cancelled_flag: Option<bool>,
    #[serde(default)]
    date_cancelled: Option<String>,
    #[serde(default, rename = "_info")]
    info: Option<WireInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAddition {
    id: i64,
    #[serde(default)]
    product: Option<WireRef>,
    #[serde(default)]
    quantity: Option<f64>,
    #[serde(default)]
    less_included: Option<f64>,
    #[serde(default)]
    effective_date: Option<String>,
    #[serde(default)]
    cancelled_date: Option<String>,
}

macro_rules! has_id {
    ($($t:ty),*) => {$(impl HasId for $t {
        fn id(&self) -> Option<i64> {
            Some(self.id)
        }
    })*};
}
has_id!(WireCompany, WireAgreement, WireAddition);

fn day_of(t: Option<&str>) -> Option<NaiveDate> {
    parse_day(t?)
}

fn updated(info: &Option<WireInfo>) -> Option<DateTime<Utc>> {
    info.as_ref()
        .and_then(|i| i.last_updated.as_deref())
        .and_then(parse_time)
}

fn company_from(c: WireCompany) -> Option<PsaCompany> {
    let status = c.status.and_then(|s| s.name);
    let deleted = c.deleted_flag.unwrap_or(false);
    let primary_contact = c.default_contact.map(|r| {
        let name = r.name.unwrap_or_default();
        let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        Contact {
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: None,
        }
    });
    Some(PsaCompany {
        id: c.id.to_string(),
        identifier: c.identifier.unwrap_or_default(),
        name: c.name.unwrap_or_default(),
        types: {
            // Collected in place, the list would keep the larger buffer of the wire list.
            let mut types: Vec<String> = c
                .types
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.name)
                .collect();
            types.shrink_to_fit();
            types
        },
        active: !deleted
            && !status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("Inactive")),
        status,
        primary_contact,
        updated_at: updated(&c.info),
    })
}

fn agreement_from(a: WireAgreement) -> Option<Agreement> {
    Some(Agreement {
        id: a.id.to_string(),
        company_id: a.company.and_then(|c| c.id)?.to_string(),
        name: a.name.unwrap_or_default(),
        start_date: day_of(a.start_date.as_deref()),
        end_date: day_of(a.end_date.as_deref()),
        no_end_date: a.no_ending_date_flag.unwrap_or(false),
        cancelled: a.cancelled_flag.unwrap_or(false),
        cancelled_date: day_of(a.date_cancelled.as_deref()),
        updated_at: updated(&a.info),
        payg_field: None,
    })
}

fn line_from(agreement_id: &str, l: WireAddition) -> Option<Line> {
    Some(Line {
        id: l.id.to_string(),
        agreement_id: agreement_id.to_owned(),
        product_id: l.product.and_then(|p| p.id)?.to_string(),
        quantity: l.quantity.unwrap_or(0.0),
        less_included: l.less_included.unwrap_or(0.0),
        effective_date: day_of(l.effective_date.as_deref()),
        cancelled_date: day_of(l.cancelled_date.as_deref()),
    })
}

fn since_condition(t: DateTime<Utc>) -> String {
    format!("lastUpdated > [{}]", t.format("%Y-%m-%dT%H:%M:%SZ"))
}

#[async_trait]
impl PsaDirectory for ConnectWise {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, company = %company_id)
    )]
    async fn primary_contact(&self, company_id: &str) -> PortResult<Option<Contact>> {
        let (company, _) = self
            .get_json(&format!("company/companies/{company_id}"), &[])
            .await?;
        match s(&company, &["defaultContact", "id"]) {
            Some(id) => self.contact(&id).await,
            None => Ok(None),
        }
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn check_login(&self) -> PortResult<()> {
        self.get_json("system/info", &[]).await.map(|_| ())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            ids = q.ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn companies(&self, q: &CompanyQuery) -> PortResult<Vec<PsaCompany>> {
        let since = q.changed_since.map(since_condition);
        self.list_for(
            "company/companies",
            "id",
            &q.ids,
            since.as_deref(),
            company_from,
        )
        .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            companies = q.company_ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn agreements(&self, q: &AgreementQuery) -> PortResult<Vec<Agreement>> {
        let since = q.changed_since.map(since_condition);
        self.list_for(
            "finance/agreements",
            "company/id",
            &q.company_ids,
            since.as_deref(),
            agreement_from,
        )
        .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, agreement = %agreement_id)
    )]
    async fn lines(&self, agreement_id: &str) -> PortResult<Vec<Line>> {
        self.list_all(
            &format!("finance/agreements/{agreement_id}/additions"),
            None,
            |v| line_from(agreement_id, v),
        )
        .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn products(&self) -> PortResult<Vec<ProductRef>> {
        self.list_all(
            "procurement/catalog",
            Some("inactiveFlag = False"),
            |v: Value| {
                Some(ProductRef {
                    id: s(&v, &["id"])?,
                    identifier: s(&v, &["identifier"]).unwrap_or_default(),
                })
            },
        )
        .await
    }
}

/// R-USE-1: an addition's quantity, with Manage's PATCH (`replace` of `quantity` only: the
/// product, "less included" and dates stay as the MSP set them). Absolute, so a PATCH repeated
/// after a lost answer writes the same number.
#[async_trait]
impl LineQuantities for ConnectWise {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, agreement = %agreement_id, line = %line_id)
    )]
    async fn set_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: f64,
        quantity: f64,
    ) -> PortResult<()> {
        let path = format!("finance/agreements/{agreement_id}/additions/{line_id}");
        let (current, _) = self.get_json(&path, &[]).await?;
        let held = current
            .get("quantity")
            .and_then(Value::as_f64)
            .unwrap_or_default();
        if (held - quantity).abs() < 1e-9 {
            return Ok(());
        }
        if (held - from).abs() > 1e-9 {
            return Err(PortError::Conflict {
                system: System::Psa,
                message: format!(
                    "ConnectWise addition {line_id} of agreement {agreement_id} holds {held}, \
                     not the {from} this run read: changed in the PSA meanwhile"
                ),
            });
        }
        let base = self.base(false).await?;
        let url = base.join(&path).map_err(|e| PortError::Rejected {
            system: System::Psa,
            message: format!("bad ConnectWise path {path}: {e}"),
        })?;
        self.ep.same_origin(&url)?;
        let body = serde_json::json!([{"op": "replace", "path": "quantity", "value": quantity}]);
        let answer = self
            .ep
            .send(&CwErrors, Idempotency::Safe, || {
                self.authed(Method::PATCH, url.clone())
                    .header("Content-Type", "application/json")
                    .json(&body)
            })
            .await?;
        if !answer.status.is_success() {
            return Err(error_from(answer.status, &answer.text(), &path));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_id_reads_the_next_link_only() {
        let link = r#"<https://x/v4_6_release/apis/3.0/company/companies?pageSize=1000&pageId=1000>; rel="next", <https://x/apis/3.0/company/companies?pageId=1>; rel="first""#;
        assert_eq!(next_page_id(link), Some(1000));
        assert_eq!(next_page_id(r#"<https://x/a?pageId=5>; rel="first""#), None);
    }

    #[test]
    fn site_accepts_hosts_and_https_urls_only() {
        assert_eq!(
            site_url("api-na.myconnectwise.net").unwrap().as_str(),
            "https://api-na.myconnectwise.net/"
        );
        assert!(site_url("http://cw.example.com").is_err());
        assert!(site_url("http://127.0.0.1:8080").is_ok());
        assert!(site_url("http://localhost.evil.example").is_err());
        assert!(site_url("http://127.0.0.1.evil.example").is_err());
    }

    #[test]
    fn error_bodies_are_classified_and_named() {
        let e = error_from(
            StatusCode::UNAUTHORIZED,
            r#"{"code":"Unauthorized","message":"Bad creds","errors":null}"#,
            "system/info",
        );
        assert!(matches!(e, PortError::Credentials { .. }));
        assert!(e.to_string().contains("Bad creds"));
        let e = error_from(
            StatusCode::BAD_REQUEST,
            r#"{"code":"InvalidObject","message":"Invalid","errors":[{"code":"x","message":"quantity must be >= 0"}]}"#,
            "additions",
        );
        assert!(e.to_string().contains("quantity must be >= 0"), "{e}");
        assert!(!e.is_retryable());
    }
}
