//! Accepting a webhook delivery (SPEC §8, R-HOOK-1..4): authenticate it before anything else,
//! refuse bad input with a clear status, make it durable on the bus exactly once, answer.
//!
//! The order is fixed: the source segment, the partner, the URL token (constant time, against
//! its stored hash), the size, the signature over the raw body (ConnectWise: the key fetched
//! only from the partner's own site, company and key path), then parsing. Nothing is written
//! before the delivery is authentic; a refused delivery leaves one log line and nothing else.
//!
//! Durable before 2xx: the delivery's key is claimed in the ledger ([`Deliveries`]), the event
//! is put on the bus, the claim is marked done, and only then is the delivery answered 200. A
//! failed put marks the claim failed and answers "try again"; a duplicate of a delivery on the
//! bus is answered 200 and goes nowhere; a duplicate racing one in flight is told to try again.
//! "Try again" is 503 with `Retry-After`, except for ConnectWise, which retries only 404, 409,
//! 419 and 429 (PSA-API-NOTES §1.4): it gets 429, so that it does retry.

use crate::model::PsaKind;
use crate::ports::{
    BusEvent, Claim, Deliveries, Events, HookSecrets, PartnerStore, SigningKeys, WebhookSecret,
};
use crate::rules::webhooks::{
    self as rules, check_size, check_token_hash, HookError, PsaNotice, Source, Topic,
};
use crate::PortError;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// The detail type of a verified PSA change (routed by `detail.topic`).
pub const DETAIL_PSA_CHANGED: &str = "PsaChanged";
/// The detail type of a verified platform alert.
pub const DETAIL_PLATFORM_ALERT: &str = "PlatformAlert";

/// What accepting a delivery needs.
pub struct HookPorts<'a> {
    pub partners: &'a dyn PartnerStore,
    pub secrets: &'a dyn HookSecrets,
    pub deliveries: &'a dyn Deliveries,
    pub keys: &'a dyn SigningKeys,
    pub events: &'a dyn Events,
}

/// One inbound request, as the route gives it.
pub struct Delivery<'a> {
    pub partner: &'a str,
    pub token: &'a str,
    pub source: &'a str,
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
    /// The value of the source's signature header ([`Source::signature_header`]), if sent.
    pub signature: Option<&'a str>,
    /// This request's own id (API Gateway's request id): the owner of its ledger claim.
    pub request_id: &'a str,
}

/// How a delivery was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// Verified and on the bus (200).
    Accepted { detail_type: String, key: String },
    /// Verified; the same delivery is already on the bus (200).
    Duplicate { key: String },
    /// Verified, but nothing psa-bridge handles (202).
    Ignored { reason: String },
    /// Refused (401, 400, 404, 413).
    Refused(HookError),
    /// Not made durable now: the sender should send it again (503, or 429 for ConnectWise).
    TryLater { reason: String },
}

/// Seconds a sender is asked to wait before it sends a delivery again.
pub const RETRY_AFTER_SECS: u32 = 2;

/// The HTTP answer to a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u32>,
}

impl HookOutcome {
    /// The answer for a delivery to `source` (the path segment as sent).
    pub fn answer(&self, source: &str) -> HookAnswer {
        let plain = |status: u16, body: Value| HookAnswer {
            status,
            body,
            retry_after: None,
        };
        match self {
            HookOutcome::Accepted { .. } => plain(200, json!({"status": "accepted"})),
            HookOutcome::Duplicate { .. } => plain(200, json!({"status": "duplicate"})),
            HookOutcome::Ignored { reason } => {
                plain(202, json!({"status": "ignored", "reason": reason}))
            }
            // The reason of a 401 goes to the log only.
            HookOutcome::Refused(e @ HookError::Unauthenticated(_)) => {
                plain(e.status(), json!({"error": "not authenticated"}))
            }
            HookOutcome::Refused(e) => plain(e.status(), json!({"error": e.to_string()})),
            HookOutcome::TryLater { .. } => HookAnswer {
                status: if source == Source::ConnectWise.as_str() {
                    429
                } else {
                    503
                },
                body: json!({"error": "not accepted now; send it again"}),
                retry_after: Some(RETRY_AFTER_SECS),
            },
        }
    }
}

/// R-HOOK-1..4: accepts one delivery. Logs one line with the outcome (never the token, the
/// body or a secret).
pub async fn accept(p: &HookPorts<'_>, d: &Delivery<'_>, now: DateTime<Utc>) -> HookOutcome {
    let outcome = match accept_inner(p, d, now).await {
        Ok(o) | Err(o) => o,
    };
    match &outcome {
        HookOutcome::Accepted { detail_type, key } => {
            tracing::info!(partner = d.partner, source = d.source, %detail_type, %key, "webhook accepted")
        }
        HookOutcome::Duplicate { key } => {
            tracing::info!(partner = d.partner, source = d.source, %key, "webhook duplicate")
        }
        HookOutcome::Ignored { reason } => {
            tracing::info!(partner = d.partner, source = d.source, %reason, "webhook ignored")
        }
        HookOutcome::Refused(e) => {
            tracing::warn!(partner = d.partner, source = d.source, status = e.status(), reason = %e, "webhook refused")
        }
        HookOutcome::TryLater { reason } => {
            tracing::error!(partner = d.partner, source = d.source, %reason, "webhook not made durable")
        }
    }
    outcome
}

fn refused(e: HookError) -> HookOutcome {
    HookOutcome::Refused(e)
}

fn later(what: &str) -> impl FnOnce(PortError) -> HookOutcome + '_ {
    move |e| HookOutcome::TryLater {
        reason: format!("{what}: {e}"),
    }
}

/// The parts of a verified delivery that go on the bus.
struct Verified {
    key: String,
    event: Result<BusEvent, String>,
}

async fn accept_inner(
    p: &HookPorts<'_>,
    d: &Delivery<'_>,
    now: DateTime<Utc>,
) -> Result<HookOutcome, HookOutcome> {
    let source = Source::parse(d.source).map_err(refused)?;
    if crate::rules::settings::check_partner_id(d.partner).is_err() {
        return Err(refused(unknown_partner(d.partner)));
    }
    let partner = p
        .partners
        .partner(d.partner)
        .await
        .map_err(later("reading the partner"))?
        .ok_or_else(|| refused(unknown_partner(d.partner)))?;
    let secret = match p.secrets.webhook(d.partner).await {
        Ok(s) => s,
        Err(PortError::NotFound { .. } | PortError::Credentials { .. }) => None,
        Err(e) => return Err(later("reading the webhook secret")(e)),
    };
    // R-HOOK-2: the URL token first; a partner without webhooks has no token to match.
    let stored = secret.as_ref().map_or("", |s| s.token_sha256.as_str());
    check_token_hash(stored, Some(d.token)).map_err(refused)?;
    let secret = secret.expect("a token matched, so there is a secret");
    match (source, partner.psa) {
        (Source::ConnectWise, PsaKind::Connectwise)
        | (Source::Autotask, PsaKind::Autotask)
        | (Source::Platform, _) => {}
        (s, psa) => {
            return Err(refused(HookError::NotFound(format!(
                "partner {} uses {psa}: it has no {} endpoint",
                d.partner,
                s.as_str()
            ))))
        }
    }
    check_size(d.body.len()).map_err(refused)?;
    let verified = verify(p, source, &secret, d).await?;
    let event = match verified.event {
        Ok(ev) => ev,
        Err(reason) => return Ok(HookOutcome::Ignored { reason }),
    };
    if !partner.enabled {
        return Ok(HookOutcome::Ignored {
            reason: format!("partner {} is disabled", d.partner),
        });
    }
    // R-HOOK-4: once, and durable before 2xx.
    let key = format!("{}:{}", d.partner, verified.key);
    match p
        .deliveries
        .claim_delivery(&key, d.request_id, now)
        .await
        .map_err(later("claiming the delivery"))?
    {
        Claim::Done => return Ok(HookOutcome::Duplicate { key }),
        Claim::InFlight => {
            return Err(HookOutcome::TryLater {
                reason: format!("delivery {key} is being handled by another request"),
            })
        }
        Claim::New => {}
    }
    if let Err(e) = p.events.publish(std::slice::from_ref(&event)).await {
        if let Err(e2) = p.deliveries.delivery_failed(&key, d.request_id, now).await {
            tracing::warn!(%key, error = %e2, "could not release the delivery claim; it lapses on its own");
        }
        return Err(later("putting the event on the bus")(e));
    }
    if let Err(e) = p.deliveries.delivery_done(&key, d.request_id, now).await {
        // The event is on the bus; a duplicate within the claim's lifetime is told to retry,
        // after it the claim is taken over (at worst one more event, which is idempotent).
        tracing::warn!(%key, error = %e, "could not mark the delivery done");
    }
    Ok(HookOutcome::Accepted {
        detail_type: event.detail_type,
        key,
    })
}

fn unknown_partner(id: &str) -> HookError {
    HookError::NotFound(format!("unknown partner {id:?}"))
}

/// Verifies the signature of an authenticated request and reads what it says.
async fn verify(
    p: &HookPorts<'_>,
    source: Source,
    secret: &WebhookSecret,
    d: &Delivery<'_>,
) -> Result<Verified, HookOutcome> {
    match source {
        Source::ConnectWise => {
            let site = secret.connectwise.as_ref().ok_or_else(|| {
                refused(HookError::Unauthenticated(
                    "no ConnectWise site is configured for callbacks",
                ))
            })?;
            let key_url = rules::connectwise_key_url(d.body).map_err(refused)?;
            if !rules::connectwise_company_matches(d.body, &site.company_id) {
                return Err(refused(HookError::Unauthenticated(
                    "the callback is not the partner's ConnectWise company's",
                )));
            }
            if !rules::connectwise_key_url_allowed(&key_url, &site.site, &site.company_id) {
                return Err(refused(HookError::Unauthenticated(
                    "Metadata.key_url is not the partner's site, company and key path",
                )));
            }
            let mut fresh = false;
            loop {
                let key = match p.keys.signing_key(&key_url, fresh).await {
                    Ok(k) => k,
                    Err(e @ PortError::Transient { .. }) => {
                        return Err(later("fetching the signing key")(e))
                    }
                    Err(_) => {
                        return Err(refused(HookError::Unauthenticated(
                            "the signing key could not be fetched from key_url",
                        )))
                    }
                };
                match rules::verify_connectwise(key.expose_secret(), d.body, d.signature) {
                    Ok(()) => break,
                    // A cached key may have rotated: fetch it once more.
                    Err(_) if !fresh => fresh = true,
                    Err(e) => return Err(refused(e)),
                }
            }
            let n = rules::connectwise_notice(d.body).map_err(refused)?;
            Ok(psa_change(d.partner, n))
        }
        Source::Autotask => {
            let s = secret
                .autotask_secret
                .as_ref()
                .map(|s| s.expose_secret().as_bytes())
                .unwrap_or_default();
            rules::verify_autotask(s, d.body, d.signature).map_err(refused)?;
            let n = rules::autotask_notice(d.body).map_err(refused)?;
            Ok(psa_change(d.partner, n))
        }
        Source::Platform => {
            let s = secret
                .platform_secret
                .as_ref()
                .map(|s| s.expose_secret().as_bytes());
            rules::verify_platform(s, d.body, d.signature).map_err(refused)?;
            let n = rules::platform_notice(d.body).map_err(refused)?;
            Ok(Verified {
                key: n.dedupe_key.clone(),
                event: Ok(BusEvent {
                    detail_type: DETAIL_PLATFORM_ALERT.into(),
                    detail: json!({
                        "partner": d.partner,
                        "alert_id": n.alert_id,
                        "alert_type": n.alert_type,
                        "tenant_id": n.tenant_id,
                        "cleared": n.cleared,
                        "alert": n.alert,
                        "delivery": n.dedupe_key,
                    }),
                }),
            })
        }
    }
}

/// The event of a verified PSA notice, or why it goes nowhere.
fn psa_change(partner: &str, n: PsaNotice) -> Verified {
    let event = match rules::topic_of(&n.entity) {
        _ if !rules::is_change(&n.action) => Err(format!(
            "{} {} is not a change of a record",
            n.entity, n.action
        )),
        None => Err(format!("entity {} is not one psa-bridge handles", n.entity)),
        Some(Topic::Company) if n.company_id.is_none() => Err(format!(
            "{} {} names no company; the next incremental pass reads it",
            n.entity, n.record_id
        )),
        Some(topic) => Ok(BusEvent {
            detail_type: DETAIL_PSA_CHANGED.into(),
            detail: json!({
                "partner": partner,
                "topic": topic.as_str(),
                "company_id": n.company_id,
                "entity": n.entity,
                "id": n.record_id,
                "action": n.action,
                "delivery": n.dedupe_key,
            }),
        }),
    };
    Verified {
        key: n.dedupe_key,
        event,
    }
}

/// A new URL token and, where the partner has none yet, a new Autotask webhook secret: made by
/// the caller from a cryptographic random source (the domain has none).
pub struct FreshSecrets {
    pub token: String,
    pub autotask_secret: String,
}

/// What `rotate_token` did: the new token, shown once, and the partner's endpoint paths.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rotated {
    pub partner: String,
    /// The token in the paths below; only its hash is stored.
    pub token: String,
    /// `/hooks/{partner}/{token}/{source}` for the PSA's source and the platform's.
    pub paths: Vec<String>,
}

/// R-HOOK-2: gives the partner a new URL token (the old one stops working at once) and keeps
/// what the receiver needs to check deliveries in its webhook secret: the ConnectWise site and
/// company (from its PSA credentials), the Autotask secret (kept, or made once). Registered
/// callbacks carry the token in their URL: register them again after a rotation.
pub async fn rotate_token(
    partners: &dyn PartnerStore,
    creds: &dyn crate::ports::Secrets,
    hooks: &dyn HookSecrets,
    partner_id: &str,
    fresh: FreshSecrets,
) -> Result<Rotated, crate::services::OpError> {
    use crate::rules::settings::PsaCredentials;
    use crate::services::OpError;
    let partner = partners
        .partner(partner_id)
        .await
        .map_err(OpError::port(partner_id, "reading the partner"))?
        .ok_or_else(|| OpError::UnknownPartner(partner_id.to_owned()))?;
    if fresh.token.len() < 32 || fresh.autotask_secret.len() < rules::MIN_SECRET {
        return Err(OpError::invalid(
            partner_id,
            "a URL token needs at least 32 characters and a webhook secret 16",
        ));
    }
    let old = hooks
        .webhook(partner_id)
        .await
        .map_err(OpError::port(partner_id, "reading the webhook secret"))?;
    let connectwise = match partner.psa {
        PsaKind::Connectwise => match creds
            .psa(partner_id)
            .await
            .map_err(OpError::port(partner_id, "reading the PSA credentials"))?
        {
            PsaCredentials::ConnectWise(cw) => Some(crate::ports::CallbackSite {
                site: cw.site,
                company_id: cw.company_id,
            }),
            PsaCredentials::Autotask(_) => None,
        },
        PsaKind::Autotask => None,
    };
    let autotask_secret = match partner.psa {
        PsaKind::Autotask => Some(
            old.as_ref()
                .and_then(|o| o.autotask_secret.clone())
                .filter(|s| s.expose_secret().len() >= rules::MIN_SECRET)
                .unwrap_or_else(|| secrecy::SecretString::from(fresh.autotask_secret)),
        ),
        PsaKind::Connectwise => None,
    };
    let secret = WebhookSecret {
        token_sha256: rules::token_hash(&fresh.token),
        connectwise,
        autotask_secret,
        platform_secret: old.and_then(|o| o.platform_secret),
    };
    hooks
        .put_webhook(partner_id, &secret)
        .await
        .map_err(OpError::port(partner_id, "writing the webhook secret"))?;
    let psa_source = match partner.psa {
        PsaKind::Connectwise => Source::ConnectWise,
        PsaKind::Autotask => Source::Autotask,
    };
    let paths = [psa_source, Source::Platform]
        .iter()
        .map(|s| format!("/hooks/{partner_id}/{}/{}", fresh.token, s.as_str()))
        .collect();
    Ok(Rotated {
        partner: partner_id.to_owned(),
        token: fresh.token,
        paths,
    })
}
