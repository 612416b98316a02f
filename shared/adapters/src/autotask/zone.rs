//! Zone discovery (R-SET-3): where a partner's Autotask database answers, found from the API
//! user name without credentials, and the origins credentials may be sent to.

use super::wire::WireZone;
use super::{rejected, Api, Autotask, VENDOR};
use crate::http::{is_loopback, Endpoint, Idempotency};
use domain::{PortError, PortResult, System};
use reqwest::Method;
use url::Url;

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

impl Autotask {
    pub(super) async fn api(&self) -> PortResult<&Api> {
        self.st.api.get_or_try_init(|| self.discover()).await
    }

    pub(super) async fn discover(&self) -> PortResult<Api> {
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
        let v: WireZone = serde_json::from_str(&text).map_err(|e| {
            rejected(format!(
                "Autotask zone discovery returned an unexpected body: {e}"
            ))
        })?;
        let Some(zone) = v.url.as_deref().map(str::trim).filter(|z| !z.is_empty()) else {
            return Err(zone_unknown());
        };
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
}

pub(super) fn zone_unknown() -> PortError {
    PortError::Credentials {
        system: System::Psa,
        message: format!(
            "{VENDOR} zone information could not be determined — check the API user name \
             (the API-only user's e-mail address)"
        ),
    }
}
