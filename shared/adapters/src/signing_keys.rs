//! ConnectWise callback signing keys (R-HOOK-2): an unauthenticated GET of the callback's
//! `Metadata.key_url`, answered `{"signing_key":"…"}` (PSA-API-NOTES §1.5). The receiver checks
//! the URL against the partner's site, company and key path before it asks; this adapter also
//! refuses anything but https (plain http to this machine only, for the local fake), follows no
//! redirect, reads at most 16 KiB, and caches each key for a few minutes (whether keys rotate
//! is UNCONFIRMED: a signature that fails with a cached key is checked once with a fresh one).

use async_trait::async_trait;
use domain::ports::SigningKeys;
use domain::rules::settings::check_vendor_url;
use domain::{PortError, PortResult, System};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a fetched key is used before it is fetched again.
pub const KEY_CACHE_FOR: Duration = Duration::from_secs(600);
/// The most a key answer may hold.
const MAX_KEY_ANSWER: usize = 16 * 1024;
/// Keys cached at most (one per partner and key id, in practice a handful).
const MAX_CACHED: usize = 1024;

#[derive(Clone)]
pub struct HttpSigningKeys {
    client: reqwest::Client,
    cache: Arc<Mutex<HashMap<String, (SecretString, Instant)>>>,
}

#[derive(Deserialize)]
struct KeyAnswer {
    signing_key: String,
}

impl HttpSigningKeys {
    /// `client` should not follow redirects ([`crate::http::client`] does not).
    pub fn new(client: reqwest::Client) -> Self {
        HttpSigningKeys {
            client,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn cached(&self, url: &str) -> Option<SecretString> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(url)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_FOR)
            .map(|(k, _)| k.clone())
    }

    async fn fetch(&self, url: &str) -> PortResult<SecretString> {
        let err = |transient: bool, why: String| {
            let message = format!("signing key: {why}");
            if transient {
                PortError::Transient {
                    system: System::Psa,
                    message,
                }
            } else {
                PortError::NotFound {
                    system: System::Psa,
                    message,
                }
            }
        };
        check_vendor_url("key_url", url).map_err(|e| err(false, e))?;
        let resp = self
            .client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| err(true, format!("request failed: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(err(true, format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(err(false, format!("HTTP {status}")));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_KEY_ANSWER as u64)
        {
            return Err(err(false, "the answer is too large".into()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| err(true, format!("reading the answer: {}", e.without_url())))?;
        if body.len() > MAX_KEY_ANSWER {
            return Err(err(false, "the answer is too large".into()));
        }
        let k: KeyAnswer = serde_json::from_slice(&body)
            .map_err(|_| err(false, "the answer is not {\"signing_key\": …}".into()))?;
        if k.signing_key.is_empty() {
            return Err(err(false, "the signing key is empty".into()));
        }
        Ok(SecretString::from(k.signing_key))
    }
}

#[async_trait]
impl SigningKeys for HttpSigningKeys {
    #[tracing::instrument(level = "debug", skip_all, fields(system = "connectwise"))]
    async fn signing_key(&self, url: &str, fresh: bool) -> PortResult<SecretString> {
        if !fresh {
            if let Some(k) = self.cached(url) {
                return Ok(k);
            }
        }
        let key = self.fetch(url).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_FOR);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(url.to_owned(), (key.clone(), Instant::now()));
        Ok(key)
    }
}
