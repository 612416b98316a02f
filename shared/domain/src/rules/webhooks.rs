//! SPEC §8 — Webhooks (R-HOOK): authenticating and reading an inbound PSA notification.
//!
//! Pure functions over the raw request (bytes, header values, the partner's secrets); the
//! webhook-receiver wires them to API Gateway and EventBridge. Every check runs on the raw body
//! bytes, before anything is parsed, and compares in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Largest body accepted (R-HOOK-3).
pub const MAX_BODY: usize = 256 * 1024;

/// Why a request is refused, with the HTTP status it gets (R-HOOK-2, R-HOOK-3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// 401; the reason goes to the log only, never to the caller.
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    /// 413.
    #[error("body of {0} bytes is over the {MAX_BODY}-byte limit")]
    TooLarge(usize),
    /// 400, naming what is wrong.
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// 404: no such partner, or no such source for it.
    #[error("{0}")]
    NotFound(String),
}

impl HookError {
    pub fn status(&self) -> u16 {
        match self {
            HookError::Unauthenticated(_) => 401,
            HookError::TooLarge(_) => 413,
            HookError::Malformed(_) => 400,
            HookError::NotFound(_) => 404,
        }
    }
}

/// R-HOOK-3: a body over [`MAX_BODY`] (256 KiB) is refused with 413, before it is parsed or
/// anything else is done with it.
pub fn check_size(len: usize) -> Result<(), HookError> {
    if len > MAX_BODY {
        return Err(HookError::TooLarge(len));
    }
    Ok(())
}

/// Equal in time independent of where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// R-HOOK-2: the unguessable per-partner token in the URL path, checked first and compared in
/// constant time. A missing or wrong token, or a partner without one, is refused with 401.
pub fn check_token(expected: &str, given: Option<&str>) -> Result<(), HookError> {
    match given {
        Some(g) if !expected.is_empty() && ct_eq(expected.as_bytes(), g.as_bytes()) => Ok(()),
        _ => Err(HookError::Unauthenticated("URL token does not match")),
    }
}

/// Shortest webhook secret accepted: HMAC takes a key of any length, so an empty or short
/// secret would let anyone sign. psa-bridge generates the secrets it registers (32 bytes).
pub const MIN_SECRET: usize = 16;

/// R-HOOK-2, Autotask: `X-Hook-Signature: sha1=<base64 HMAC-SHA1(secretKey, raw body)>`; a
/// secret shorter than [`MIN_SECRET`] bytes is refused whatever the signature.
pub fn verify_autotask(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), HookError> {
    if secret.len() < MIN_SECRET {
        return Err(HookError::Unauthenticated(
            "the webhook secret is missing or too short",
        ));
    }
    let given = header
        .map(str::trim)
        .and_then(|h| h.strip_prefix("sha1="))
        .ok_or(HookError::Unauthenticated(
            "X-Hook-Signature missing or not sha1=",
        ))?;
    let given = STANDARD
        .decode(given.trim())
        .map_err(|_| HookError::Unauthenticated("X-Hook-Signature is not base64"))?;
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret)
        .map_err(|_| HookError::Unauthenticated("no webhook secret"))?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| HookError::Unauthenticated("X-Hook-Signature does not match"))
}

/// R-HOOK-2, ConnectWise: `x-content-signature: base64(HMAC-SHA256(SHA256(signing key), raw body))`.
pub fn verify_connectwise(
    signing_key: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), HookError> {
    let given = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(HookError::Unauthenticated("x-content-signature missing"))?;
    let given = STANDARD
        .decode(given)
        .map_err(|_| HookError::Unauthenticated("x-content-signature is not base64"))?;
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .map_err(|_| HookError::Unauthenticated("no signing key"))?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| HookError::Unauthenticated("x-content-signature does not match"))
}

/// R-HOOK-2, ConnectWise: the payload names where its signing key is (`Metadata.key_url`); it
/// is fetched only from the partner's own site over https (an attacker's key server would
/// otherwise sign anything), and only at the documented key path (`…/callback.ashx`, the path
/// of the vendor's samples; UNCONFIRMED beyond them). ConnectWise cloud hosts are shared by
/// many companies: a key URL that names a company (`companyId`/`company` in its query) must
/// name the partner's own `company`, and the callback itself must be the partner's company's
/// ([`connectwise_company_matches`]). `site` is the partner's ConnectWise site, host or URL.
///
/// A site given as a loopback `http://` URL (a local fake, as the ConnectWise adapter allows)
/// trusts key URLs of that same scheme, host and port only.
pub fn connectwise_key_url_allowed(key_url: &str, site: &str, company: &str) -> bool {
    let Ok(u) = url::Url::parse(key_url.trim()) else {
        return false;
    };
    let site_url = url::Url::parse(site.trim())
        .ok()
        .filter(|s| s.host_str().is_some() && matches!(s.scheme(), "https" | "http"));
    let site_host = site_url
        .as_ref()
        .and_then(|s| s.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| {
            site.trim()
                .trim_end_matches('/')
                .split('/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        });
    let local_site = site_url
        .as_ref()
        .filter(|s| s.scheme() == "http" && crate::rules::settings::is_loopback(s));
    let scheme_and_port = match local_site {
        Some(s) => u.scheme() == "http" && u.port() == s.port(),
        None => u.scheme() == "https" && u.port().is_none(),
    };
    let key_path = u
        .path_segments()
        .and_then(|mut s| s.next_back())
        .is_some_and(|last| last.eq_ignore_ascii_case("callback.ashx"));
    let other_company = u.query_pairs().any(|(k, v)| {
        (k.eq_ignore_ascii_case("companyid") || k.eq_ignore_ascii_case("company"))
            && !v.trim().eq_ignore_ascii_case(company.trim())
    });
    scheme_and_port
        && u.username().is_empty()
        && u.password().is_none()
        && u.host_str().map(str::to_ascii_lowercase) == Some(site_host)
        && key_path
        && !other_company
}

/// R-HOOK-2, ConnectWise: the callback's `CompanyId` is the partner's own company id
/// (case-insensitive); a callback without one is not the partner's.
pub fn connectwise_company_matches(body: &[u8], company: &str) -> bool {
    object(body)
        .ok()
        .and_then(|v| text(&v, "CompanyId"))
        .is_some_and(|c| !company.trim().is_empty() && c.eq_ignore_ascii_case(company.trim()))
}

/// What a PSA notification says, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaNotice {
    /// Entity type as the PSA names it (`Company`, `agreement`, …).
    pub entity: String,
    pub record_id: String,
    pub action: String,
    /// The company the change is about, when the payload says it.
    pub company_id: Option<String>,
    /// The same delivery sent twice gives the same key (R-HOOK-4).
    pub dedupe_key: String,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn object(body: &[u8]) -> Result<Value, HookError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| HookError::Malformed(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(HookError::Malformed("the body is not a JSON object".into()));
    }
    Ok(v)
}

/// An Autotask webhook delivery: `Action`, `Guid`, `EntityType`, `Id`, `Fields`, `EventTime`,
/// `SequenceNumber`. R-HOOK-4: deliveries are recognised as duplicates by their event (entity,
/// id, action, time, sequence): whether `Guid` names the webhook or the event is UNCONFIRMED
/// (PSA-API-NOTES §2.4). R-HOOK-3: a body that is not such a JSON object is malformed (400).
pub fn autotask_notice(body: &[u8]) -> Result<PsaNotice, HookError> {
    let v = object(body)?;
    let need = |k: &str| text(&v, k).ok_or_else(|| HookError::Malformed(format!("{k} is missing")));
    let entity = need("EntityType")?;
    let record_id = need("Id")?;
    let action = need("Action")?;
    let event = [text(&v, "EventTime"), text(&v, "SequenceNumber")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if event.is_empty() {
        return Err(HookError::Malformed(
            "EventTime and SequenceNumber are both missing".into(),
        ));
    }
    let company_id = if entity.eq_ignore_ascii_case("Company") {
        Some(record_id.clone())
    } else {
        v.get("Fields").and_then(|f| {
            text(f, "companyID")
                .or_else(|| text(f, "CompanyID"))
                .or_else(|| text(f, "companyId"))
        })
    };
    Ok(PsaNotice {
        dedupe_key: format!("at:{entity}:{record_id}:{action}:{}", event.join(":")),
        entity,
        record_id,
        action,
        company_id,
    })
}

/// A ConnectWise callback: `MessageId`, `Action`, `Type`, `ID`, and `Entity` (a JSON string of the
/// record). R-HOOK-4: deliveries are recognised as duplicates by `MessageId` when present, else
/// by type, id, action and the record's `_info.lastUpdated`. R-HOOK-3: a body that is not such a
/// JSON object is malformed (400).
pub fn connectwise_notice(body: &[u8]) -> Result<PsaNotice, HookError> {
    let v = object(body)?;
    let need = |k: &str| text(&v, k).ok_or_else(|| HookError::Malformed(format!("{k} is missing")));
    let entity = need("Type")?;
    let record_id = need("ID")?;
    let action = need("Action")?;
    let record: Option<Value> = match v.get("Entity") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(
            serde_json::from_str(s)
                .map_err(|e| HookError::Malformed(format!("Entity is not a JSON record: {e}")))?,
        ),
        Some(Value::Object(_)) => v.get("Entity").cloned(),
        _ => None,
    };
    let company_id = if entity.eq_ignore_ascii_case("company") {
        Some(record_id.clone())
    } else {
        record
            .as_ref()
            .and_then(|r| r.get("company"))
            .and_then(|c| text(c, "id"))
    };
    let updated = record
        .as_ref()
        .and_then(|r| r.pointer("/_info/lastUpdated"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let dedupe_key = match text(&v, "MessageId") {
        Some(m) => format!("cw:{m}"),
        None => format!(
            "cw:{entity}:{record_id}:{action}:{}",
            updated.unwrap_or_default()
        ),
    };
    Ok(PsaNotice {
        entity,
        record_id,
        action,
        company_id,
        dedupe_key,
    })
}

/// The `Metadata.key_url` of a ConnectWise callback.
pub fn connectwise_key_url(body: &[u8]) -> Result<String, HookError> {
    let v = object(body)?;
    v.pointer("/Metadata/key_url")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(HookError::Unauthenticated("Metadata.key_url is missing"))
}

/// R-HOOK-1: the sources a partner's endpoints receive from, one path each
/// (`/hooks/{partner}/{token}/{source}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConnectWise,
    Autotask,
    Platform,
}

impl Source {
    /// The path segment; anything else is not an endpoint (404).
    pub fn parse(segment: &str) -> Result<Source, HookError> {
        match segment {
            "connectwise" => Ok(Source::ConnectWise),
            "autotask" => Ok(Source::Autotask),
            "platform" => Ok(Source::Platform),
            other => Err(HookError::NotFound(format!(
                "no webhook source {other:?}: use connectwise, autotask or platform"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Source::ConnectWise => "connectwise",
            Source::Autotask => "autotask",
            Source::Platform => "platform",
        }
    }

    /// The header that carries the delivery's signature.
    pub fn signature_header(&self) -> &'static str {
        match self {
            Source::ConnectWise => "x-content-signature",
            Source::Autotask => "x-hook-signature",
            Source::Platform => PLATFORM_SIGNATURE_HEADER,
        }
    }
}

/// The platform endpoint's optional signature: `sha256=<hex HMAC-SHA256(secret, raw body)>`
/// (psa-bridge's own convention: the platform has no webhook signature of its own).
pub const PLATFORM_SIGNATURE_HEADER: &str = "x-psa-bridge-signature";

/// R-HOOK-2: what is stored of a URL token: its SHA-256, hex. The token itself is shown once,
/// when it is made, and never stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// R-HOOK-2: the URL token checked against its stored hash, in constant time.
pub fn check_token_hash(stored_hash: &str, given: Option<&str>) -> Result<(), HookError> {
    let given = given.map(token_hash);
    check_token(stored_hash, given.as_deref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// R-HOOK-2, platform: with a secret configured, `x-psa-bridge-signature: sha256=<hex>` over
/// the raw body is required (a short secret is refused, as for Autotask); without one the URL
/// token alone authenticates.
pub fn verify_platform(
    secret: Option<&[u8]>,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), HookError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    if secret.len() < MIN_SECRET {
        return Err(HookError::Unauthenticated(
            "the platform webhook secret is too short",
        ));
    }
    let given = header
        .map(str::trim)
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or(HookError::Unauthenticated(
            "x-psa-bridge-signature missing or not sha256=",
        ))?;
    let given = unhex(given.trim()).ok_or(HookError::Unauthenticated(
        "x-psa-bridge-signature is not hex",
    ))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| HookError::Unauthenticated("no platform webhook secret"))?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| HookError::Unauthenticated("x-psa-bridge-signature does not match"))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The platform signature of a body (for senders and tests).
pub fn platform_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// What a verified change is about, which decides where it goes (R-HOOK-4, the template's
/// routing): a company's sync (companies, agreements/contracts and their lines) or tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Company,
    Ticket,
}

impl Topic {
    pub fn as_str(&self) -> &'static str {
        match self {
            Topic::Company => "company",
            Topic::Ticket => "ticket",
        }
    }
}

/// The topic of a PSA entity as the PSA names it; `None` for entities psa-bridge does not
/// handle (contacts, configurations, notes, …: answered 202 and logged).
pub fn topic_of(entity: &str) -> Option<Topic> {
    match entity.to_ascii_lowercase().as_str() {
        "company" | "agreement" | "addition" | "agreementaddition" | "contract"
        | "contractservice" => Some(Topic::Company),
        "ticket" => Some(Topic::Ticket),
        _ => None,
    }
}

/// Actions that are not a change of the record: Autotask's `Deactivated` (sent to the
/// deactivation URL when the webhook is turned off) is logged, not routed.
pub fn is_change(action: &str) -> bool {
    !action.eq_ignore_ascii_case("deactivated")
}

/// A platform alert as delivered to the platform endpoint: an Alert Manager `AlertView`
/// (`id`, `type`, `severity`, `tenant.id`, `updatedAt`, `deletedAt` once dismissed).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertNotice {
    pub alert_id: String,
    pub alert_type: String,
    pub tenant_id: String,
    /// Dismissed on the platform (`deletedAt` set): its ticket may be closed (R-TKT-6).
    pub cleared: bool,
    /// The alert's fields to forward (details dropped past [`MAX_FORWARDED_DETAILS`]).
    pub alert: Value,
    /// R-HOOK-4: the alert and its version (`updatedAt`, whether cleared): a duplicate
    /// delivery of the same version has the same key; a repeat of the alert does not.
    pub dedupe_key: String,
}

/// Largest `details` forwarded on the bus (an event holds at most 256 KB in all).
pub const MAX_FORWARDED_DETAILS: usize = 64 * 1024;

/// R-HOOK-3: a platform alert body; anything that is not an alert object is malformed (400).
pub fn platform_notice(body: &[u8]) -> Result<AlertNotice, HookError> {
    let v = object(body)?;
    let need = |k: &str| text(&v, k).ok_or_else(|| HookError::Malformed(format!("{k} is missing")));
    let alert_id = need("id")?;
    let alert_type = need("type")?;
    let tenant_id = v
        .get("tenant")
        .and_then(|t| text(t, "id"))
        .ok_or_else(|| HookError::Malformed("tenant.id is missing".into()))?;
    let updated = text(&v, "updatedAt")
        .or_else(|| text(&v, "createdAt"))
        .ok_or_else(|| HookError::Malformed("updatedAt and createdAt are both missing".into()))?;
    let cleared = text(&v, "deletedAt").is_some();
    let mut alert = serde_json::Map::new();
    for k in [
        "id",
        "type",
        "category",
        "severity",
        "createdAt",
        "receivedAt",
        "updatedAt",
        "deletedAt",
        "tenant",
        "details",
    ] {
        if let Some(x) = v.get(k) {
            alert.insert(k.to_owned(), x.clone());
        }
    }
    let details_len = alert
        .get("details")
        .map_or(0, |d| serde_json::to_vec(d).map_or(usize::MAX, |b| b.len()));
    if details_len > MAX_FORWARDED_DETAILS {
        alert.remove("details");
        alert.insert("details_dropped".into(), Value::Bool(true));
    }
    Ok(AlertNotice {
        dedupe_key: format!(
            "pf:{alert_id}:{updated}:{}",
            if cleared { "cleared" } else { "raised" }
        ),
        alert_id,
        alert_type,
        tenant_id,
        cleared,
        alert: Value::Object(alert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected signatures computed independently with Python's hmac/hashlib.
    const AT_BODY: &str = r#"{"Action":"Update","Guid":"6f1f4e2a-1b1c-4c1e-9a55-0d8b2b3c4d5e","EntityType":"Company","Id":174,"Fields":{"companyName":"Contoso & Co <AT>"},"EventTime":"2026-11-22T10:00:00.000Z","SequenceNumber":42,"PersonID":29682885}"#;
    const AT_SIG: &str = "sha1=YU+DEuQ2dbA47PrqjfqIQwETooY=";
    const CW_BODY: &str = r#"{"MessageId":"a1b2","FromUrl":"https://api-na.myconnectwise.net","CompanyId":"acmemsp","MemberId":"api","Action":"updated","Type":"agreement","ID":77,"Entity":"{\"id\":77,\"company\":{\"id\":19300}}","Metadata":{"key_url":"https://api-na.myconnectwise.net/v4_6_release/callback.ashx?keyid=1"}}"#;
    const CW_SIG: &str = "MqDIylD5i01Qiuq063AfBLqiiadzI+2RIcIuYY8VclI=";

    #[test]
    fn r_hook_2_autotask_hmac_sha1_over_the_raw_body() {
        let secret = b"at-webhook-secret-123";
        assert_eq!(
            verify_autotask(secret, AT_BODY.as_bytes(), Some(AT_SIG)),
            Ok(())
        );
        let rows: [(&[u8], &[u8], Option<&str>); 5] = [
            (b"other-secret-1234", AT_BODY.as_bytes(), Some(AT_SIG)),
            (secret, b"{\"Action\":\"Update\"}", Some(AT_SIG)),
            (secret, AT_BODY.as_bytes(), None),
            (
                secret,
                AT_BODY.as_bytes(),
                Some("YU+DEuQ2dbA47PrqjfqIQwETooY="),
            ),
            (secret, AT_BODY.as_bytes(), Some("sha1=not base64!")),
        ];
        for (s, body, header) in rows {
            let e = verify_autotask(s, body, header).unwrap_err();
            assert_eq!(e.status(), 401, "{header:?}");
        }
        // The raw bytes count: the same JSON re-serialised differently does not verify.
        let reformatted = AT_BODY.replace(",\"", ", \"");
        assert!(verify_autotask(secret, reformatted.as_bytes(), Some(AT_SIG)).is_err());
    }

    #[test]
    fn r_hook_2_connectwise_content_signature_and_key_url_pinned_to_the_site() {
        let key = "cw-signing-key-xyz";
        assert_eq!(
            verify_connectwise(key, CW_BODY.as_bytes(), Some(CW_SIG)),
            Ok(())
        );
        assert!(verify_connectwise("other-key", CW_BODY.as_bytes(), Some(CW_SIG)).is_err());
        assert!(verify_connectwise(key, b"{}", Some(CW_SIG)).is_err());
        assert!(verify_connectwise(key, CW_BODY.as_bytes(), None).is_err());

        let url = connectwise_key_url(CW_BODY.as_bytes()).unwrap();
        let site = "api-na.myconnectwise.net";
        assert!(connectwise_key_url_allowed(&url, site, "acmemsp"));
        assert!(connectwise_key_url_allowed(
            &url,
            "https://API-NA.myconnectwise.net/",
            "acmemsp"
        ));
        for bad in [
            "http://api-na.myconnectwise.net/v4_6_release/callback.ashx",
            "https://evil.example/api-na.myconnectwise.net",
            "https://api-na.myconnectwise.net.evil.example/key",
            "https://user@api-na.myconnectwise.net/key",
            "https://api-na.myconnectwise.net:8443/key",
            "not a url",
        ] {
            assert!(!connectwise_key_url_allowed(bad, site, "acmemsp"), "{bad}");
        }
    }

    #[test]
    fn r_hook_2_an_empty_or_short_autotask_secret_is_refused() {
        // HMAC takes a key of any length: a secret of 0 or a few bytes would "verify".
        for secret in [&b""[..], b"x", b"short-15-bytes!"] {
            let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap();
            mac.update(AT_BODY.as_bytes());
            let sig = format!("sha1={}", STANDARD.encode(mac.finalize().into_bytes()));
            let e = verify_autotask(secret, AT_BODY.as_bytes(), Some(&sig)).unwrap_err();
            assert_eq!(e.status(), 401, "{secret:?}");
            assert!(e.to_string().contains("too short"), "{e}");
        }
    }

    #[test]
    fn r_hook_2_a_key_url_of_another_company_or_path_on_the_shared_host_is_refused() {
        let site = "api-na.myconnectwise.net";
        let ours = "https://api-na.myconnectwise.net/v4_6_release/callback.ashx?keyid=1";
        assert!(connectwise_key_url_allowed(ours, site, "acmemsp"));
        for bad in [
            // The documented key path only.
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies",
            "https://api-na.myconnectwise.net/evil/key.json",
            // Another company on the same cloud host.
            "https://api-na.myconnectwise.net/v4_6_release/callback.ashx?keyid=1&companyId=othermsp",
        ] {
            assert!(!connectwise_key_url_allowed(bad, site, "acmemsp"), "{bad}");
        }
        // The callback must be the partner's own company's.
        assert!(connectwise_company_matches(CW_BODY.as_bytes(), "AcmeMSP"));
        let other = CW_BODY.replace("\"CompanyId\":\"acmemsp\"", "\"CompanyId\":\"othermsp\"");
        assert!(!connectwise_company_matches(other.as_bytes(), "acmemsp"));
        let none = CW_BODY.replace("\"CompanyId\":\"acmemsp\",", "");
        assert!(!connectwise_company_matches(none.as_bytes(), "acmemsp"));
    }

    #[test]
    fn r_hook_2_url_token_in_constant_time() {
        assert_eq!(check_token("tok-abc", Some("tok-abc")), Ok(()));
        for given in [Some("tok-abd"), Some("tok-ab"), Some(""), None] {
            assert_eq!(check_token("tok-abc", given).unwrap_err().status(), 401);
        }
        assert!(check_token("", Some("")).is_err(), "no token configured");
    }

    #[test]
    fn r_hook_3_size_and_malformed_bodies_are_named() {
        assert_eq!(check_size(MAX_BODY), Ok(()));
        assert_eq!(check_size(MAX_BODY + 1).unwrap_err().status(), 413);
        let rows: [(&[u8], &str); 4] = [
            (b"not json", "not JSON"),
            (b"[1,2]", "not a JSON object"),
            (
                br#"{"Action":"Update","Id":1,"EventTime":"t"}"#,
                "EntityType is missing",
            ),
            (
                br#"{"Action":"Update","EntityType":"Company","Id":1}"#,
                "EventTime and SequenceNumber",
            ),
        ];
        for (body, want) in rows {
            let e = autotask_notice(body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(want), "{e}");
        }
        let e = connectwise_notice(
            br#"{"Type":"agreement","ID":1,"Action":"updated","Entity":"{oops"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Entity is not a JSON record"), "{e}");
    }

    #[test]
    fn r_hook_4_notices_name_the_company_and_a_delivery_key() {
        let n = autotask_notice(AT_BODY.as_bytes()).unwrap();
        assert_eq!(
            (
                n.entity.as_str(),
                n.record_id.as_str(),
                n.company_id.as_deref()
            ),
            ("Company", "174", Some("174"))
        );
        // The same delivery twice: the same key; another event: another key.
        assert_eq!(
            autotask_notice(AT_BODY.as_bytes()).unwrap().dedupe_key,
            n.dedupe_key
        );
        let later = AT_BODY.replace("\"SequenceNumber\":42", "\"SequenceNumber\":43");
        assert_ne!(
            autotask_notice(later.as_bytes()).unwrap().dedupe_key,
            n.dedupe_key
        );
        let ticket = br#"{"Action":"Create","EntityType":"Ticket","Id":9,"Fields":{"companyID":174},"SequenceNumber":1}"#;
        assert_eq!(
            autotask_notice(ticket).unwrap().company_id.as_deref(),
            Some("174")
        );

        let c = connectwise_notice(CW_BODY.as_bytes()).unwrap();
        assert_eq!(
            (
                c.entity.as_str(),
                c.record_id.as_str(),
                c.company_id.as_deref()
            ),
            ("agreement", "77", Some("19300"))
        );
        assert_eq!(c.dedupe_key, "cw:a1b2");
    }
}
