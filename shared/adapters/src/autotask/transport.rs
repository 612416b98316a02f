//! Sending: one authenticated request to the discovered API origin, within the per-entity
//! limit, retried as Autotask's answers allow, and parsed into its wire shape.

use super::errors::retryable;
use super::{transient, Autotask, VENDOR};
use crate::http::{snippet, Endpoint, ErrorDialect, Idempotency};
use domain::{PortError, PortResult};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

/// The entity endpoint of an API URL (`…/V1.0/Companies/query` → `Companies`).
pub(super) fn entity_of(u: &Url) -> String {
    let segs: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
    segs.iter()
        .position(|s| s.eq_ignore_ascii_case("V1.0"))
        .and_then(|i| segs.get(i + 1))
        .map(|s| (*s).to_owned())
        .unwrap_or_default()
}

impl Autotask {
    /// One request, in the endpoint's one retry loop: 429 (honouring Retry-After), and for
    /// reads 502/503/504, the 500s Autotask answers to server failures (not those it answers
    /// to permanent errors, [`retryable`]) and lost connections. Returns the first answer that
    /// is not retried, with its body.
    ///
    /// A write (`Idempotency::Unsafe`) is never sent twice after it may have arrived: a
    /// retryable 5xx or a lost answer is handed back as transient, and the caller re-reads
    /// before it writes again.
    pub(super) async fn exchange(
        &self,
        ep: &Endpoint,
        method: Method,
        url: Url,
        body: Option<&Value>,
        auth: bool,
        idem: Idempotency,
    ) -> PortResult<(StatusCode, String)> {
        let not_repeated = "(a write is not repeated; the next run re-reads first)";
        let sent = ep
            .send(&*self.cfg, idem, || {
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
        match sent {
            Ok(answer) => {
                let text = answer.text().into_owned();
                if idem == Idempotency::Unsafe && retryable(answer.status, &text) {
                    return Err(transient(format!(
                        "{VENDOR} answered {}: {} {not_repeated}",
                        answer.status,
                        snippet(&self.scrub(&text))
                    )));
                }
                Ok((answer.status, text))
            }
            Err(PortError::Transient { message, .. }) if idem == Idempotency::Unsafe => {
                Err(transient(format!("{message} {not_repeated}")))
            }
            Err(e) => Err(e),
        }
    }

    /// An authenticated read after the guard.
    pub(super) async fn call<W: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> PortResult<W> {
        self.guard().await?;
        self.call_unguarded(method, url, body, Idempotency::Safe)
            .await
    }

    /// An authenticated write after the guard (sent once; see [`Autotask::exchange`]).
    pub(super) async fn write<W: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &Value,
    ) -> PortResult<W> {
        self.guard().await?;
        self.call_unguarded(method, url, Some(body), Idempotency::Unsafe)
            .await
    }

    /// An authenticated call to the API origin, within the per-endpoint limit.
    pub(super) async fn call_unguarded<W: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> PortResult<W> {
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
        serde_json::from_str(&text).map_err(|e| self.cfg.unexpected_body(&what, e))
    }
}
