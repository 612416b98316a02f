//! [`MemoryHooks`]: the webhook receiver's ports in memory — webhook secrets, the delivery
//! ledger with the DynamoDB adapter's claim semantics, and ConnectWise signing keys by URL
//! (with the URLs fetched, so a test proves a key URL was refused unfetched).

use super::fake::Fake;
use crate::error::{PortError, PortResult, System};
use crate::ports::{
    Claim, Clock, Deliveries, HookSecrets, SigningKeys, WebhookSecret, CLAIM_STALE_SECS,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A ledger entry: its state, owner and when it was claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEntry {
    pub state: DeliveryState,
    pub owner: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Done,
    Failed,
}

/// Everything the hook ports hold.
#[derive(Debug, Clone, Default)]
pub struct HooksState {
    pub secrets: BTreeMap<String, WebhookSecret>,
    pub deliveries: BTreeMap<String, DeliveryEntry>,
    /// Signing keys served by URL.
    pub keys: BTreeMap<String, String>,
    /// URLs fetched, in order.
    pub fetched: Vec<String>,
}

pub type MemoryHooks = Fake<HooksState>;

impl MemoryHooks {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Fake::from_state(clock, HooksState::default())
    }

    pub fn set_secret(&self, partner: &str, s: WebhookSecret) {
        self.with(|st, _| st.secrets.insert(partner.to_owned(), s));
    }

    pub fn serve_key(&self, url: &str, key: &str) {
        self.with(|st, _| st.keys.insert(url.to_owned(), key.to_owned()));
    }

    pub fn fetched(&self) -> Vec<String> {
        self.with(|st, _| st.fetched.clone())
    }

    pub fn deliveries(&self) -> BTreeMap<String, DeliveryEntry> {
        self.with(|st, _| st.deliveries.clone())
    }
}

#[async_trait]
impl HookSecrets for MemoryHooks {
    async fn webhook(&self, partner: &str) -> PortResult<Option<WebhookSecret>> {
        self.call("webhook", partner, |st, _| {
            Ok(st.secrets.get(partner).cloned())
        })
    }

    async fn put_webhook(&self, partner: &str, s: &WebhookSecret) -> PortResult<()> {
        self.call("put_webhook", partner, |st, _| {
            st.secrets.insert(partner.to_owned(), s.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl Deliveries for MemoryHooks {
    async fn claim_delivery(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Claim> {
        self.call("claim_delivery", key, |st, _| {
            let claim = match st.deliveries.get(key) {
                None => Claim::New,
                Some(e) => match e.state {
                    DeliveryState::Done => Claim::Done,
                    DeliveryState::Failed => Claim::New,
                    DeliveryState::Pending if e.at + Duration::seconds(CLAIM_STALE_SECS) <= now => {
                        Claim::New
                    }
                    DeliveryState::Pending => Claim::InFlight,
                },
            };
            if claim == Claim::New {
                st.deliveries.insert(
                    key.to_owned(),
                    DeliveryEntry {
                        state: DeliveryState::Pending,
                        owner: owner.to_owned(),
                        at: now,
                    },
                );
            }
            Ok(claim)
        })
    }

    async fn delivery_done(&self, key: &str, owner: &str, _now: DateTime<Utc>) -> PortResult<()> {
        self.call("delivery_done", key, |st, _| {
            mark(st, key, owner, DeliveryState::Done)
        })
    }

    async fn delivery_failed(&self, key: &str, owner: &str, _now: DateTime<Utc>) -> PortResult<()> {
        self.call("delivery_failed", key, |st, _| {
            mark(st, key, owner, DeliveryState::Failed)
        })
    }
}

fn mark(st: &mut HooksState, key: &str, owner: &str, state: DeliveryState) -> PortResult<()> {
    match st.deliveries.get_mut(key) {
        Some(e) if e.owner == owner => {
            e.state = state;
            Ok(())
        }
        _ => Err(PortError::Conflict {
            system: System::Store,
            message: format!("delivery {key} is not claimed by {owner}"),
        }),
    }
}

#[async_trait]
impl SigningKeys for MemoryHooks {
    async fn signing_key(&self, url: &str, _fresh: bool) -> PortResult<SecretString> {
        self.call("signing_key", url, |st, _| {
            st.fetched.push(url.to_owned());
            st.keys
                .get(url)
                .map(|k| SecretString::from(k.clone()))
                .ok_or_else(|| PortError::NotFound {
                    system: System::Psa,
                    message: format!("no signing key at {url}"),
                })
        })
    }
}
