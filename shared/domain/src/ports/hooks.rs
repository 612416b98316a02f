//! Ports of the webhook receiver (R-HOOK): a partner's webhook secret, the delivery ledger that
//! makes a delivery count once, and the ConnectWise signing keys.

use crate::error::PortResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// The ConnectWise site and company whose callbacks a partner accepts (copied from its PSA
/// secret when the webhooks are set up, so the receiver reads the webhook secret only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSite {
    /// The site host or URL, as in the PSA credentials.
    pub site: String,
    pub company_id: String,
}

/// A partner's webhook settings (Secrets Manager `{prefix}{partner}/webhook`, R-SET-2).
#[derive(Debug, Clone)]
pub struct WebhookSecret {
    /// SHA-256 (hex) of the URL token (`rules::webhooks::token_hash`); the token is shown once.
    pub token_sha256: String,
    /// ConnectWise: where signing keys may be fetched from.
    pub connectwise: Option<CallbackSite>,
    /// Autotask: the `secretKey` of the webhooks psa-bridge registers.
    pub autotask_secret: Option<SecretString>,
    /// Platform: the signing secret, where configured (else the token alone).
    pub platform_secret: Option<SecretString>,
}

/// Reading and writing webhook secrets.
#[async_trait]
pub trait HookSecrets: Send + Sync {
    /// `None`: the partner has no webhook secret (webhooks not set up).
    async fn webhook(&self, partner: &str) -> PortResult<Option<WebhookSecret>>;
    async fn put_webhook(&self, partner: &str, s: &WebhookSecret) -> PortResult<()>;
}

/// Where a delivery stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First seen (or its earlier attempt failed or was abandoned): this request handles it.
    New,
    /// Already on the bus: a duplicate.
    Done,
    /// Being handled by another request right now: the sender should retry.
    InFlight,
}

/// How long a delivery claim without an outcome blocks its duplicates (a crashed receiver's
/// claim is taken over after it).
pub const CLAIM_STALE_SECS: i64 = 30;

/// How long a delivery is remembered (the ledger item's TTL): longer than any vendor retries.
pub const DELIVERY_TTL_SECS: i64 = 3 * 24 * 3600;

/// R-HOOK-4: the ledger of deliveries (DynamoDB `HOOK#key`, conditional writes with a TTL).
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Claims `key` for `owner` at `now`: `New` when no one has it, its claim failed, or its
    /// claim is older than [`CLAIM_STALE_SECS`]; else `Done` or `InFlight`.
    async fn claim_delivery(&self, key: &str, owner: &str, now: DateTime<Utc>)
        -> PortResult<Claim>;
    /// The delivery `owner` claimed is on the bus.
    async fn delivery_done(&self, key: &str, owner: &str, now: DateTime<Utc>) -> PortResult<()>;
    /// The delivery `owner` claimed could not be put on the bus: the next attempt takes it.
    async fn delivery_failed(&self, key: &str, owner: &str, now: DateTime<Utc>) -> PortResult<()>;
}

/// ConnectWise signing keys, fetched from a `key_url` the caller has checked (R-HOOK-2).
#[async_trait]
pub trait SigningKeys: Send + Sync {
    /// The key at `url`; `fresh` skips any cached copy (the key may have rotated).
    async fn signing_key(&self, url: &str, fresh: bool) -> PortResult<SecretString>;
}
