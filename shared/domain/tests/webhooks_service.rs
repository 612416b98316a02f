//! The webhook receiver's service (R-HOOK-1..4) over the in-memory ports: every refusal leaves
//! no event and no ledger entry; a valid delivery is on the bus once.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use domain::model::PsaKind;
use domain::ports::{CallbackSite, WebhookSecret};
use domain::rules::webhooks::{platform_signature, token_hash, MAX_BODY};
use domain::services::webhooks::{accept, Delivery, HookOutcome, HookPorts};
use domain::testing::*;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

const TOKEN: &str = "tok-0123456789abcdef0123456789abcdef";
const AT_SECRET: &str = "autotask-secret-0123456789";
const CW_KEY: &str = "cw-signing-key-1";
const SITE: &str = "api-na.myconnectwise.net";
const KEY_URL: &str = "https://api-na.myconnectwise.net/v4_6_release/callback.ashx?keyid=1";

struct Rig {
    w: World,
    hooks: MemoryHooks,
}

impl Rig {
    async fn new(psa: PsaKind) -> Rig {
        let w = World::new(psa).await;
        let hooks = MemoryHooks::new(w.clock.clone());
        hooks.set_secret(
            PARTNER,
            WebhookSecret {
                token_sha256: token_hash(TOKEN),
                connectwise: Some(CallbackSite {
                    site: SITE.into(),
                    company_id: "acmemsp".into(),
                }),
                autotask_secret: Some(SecretString::from(AT_SECRET)),
                platform_secret: None,
            },
        );
        hooks.serve_key(KEY_URL, CW_KEY);
        Rig { w, hooks }
    }

    async fn send(&self, source: &str, token: &str, body: &[u8], sig: Option<&str>) -> HookOutcome {
        self.send_as(PARTNER, source, token, body, sig, "req-1")
            .await
    }

    async fn send_as(
        &self,
        partner: &str,
        source: &str,
        token: &str,
        body: &[u8],
        sig: Option<&str>,
        request_id: &str,
    ) -> HookOutcome {
        let ports = HookPorts {
            partners: &self.w.store,
            secrets: &self.hooks,
            deliveries: &self.hooks,
            keys: &self.hooks,
            events: &self.w.events,
        };
        let d = Delivery {
            partner,
            token,
            source,
            body,
            signature: sig,
            request_id,
        };
        accept(&ports, &d, self.w.now()).await
    }

    fn nothing_left(&self) {
        assert!(self.w.events.published().is_empty(), "no event");
        assert!(self.hooks.deliveries().is_empty(), "no ledger entry");
    }
}

fn cw_body(company: &str, key_url: &str) -> String {
    format!(
        r#"{{"MessageId":"m-1","FromUrl":"https://{SITE}","CompanyId":"{company}","MemberId":"api","Action":"updated","Type":"agreement","ID":77,"Entity":"{{\"id\":77,\"company\":{{\"id\":19300}}}}","Metadata":{{"key_url":"{key_url}"}}}}"#
    )
}

fn cw_sig(key: &str, body: &[u8]) -> String {
    let k = Sha256::digest(key.as_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&k).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn at_sig(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", STANDARD.encode(mac.finalize().into_bytes()))
}

const AT_BODY: &str = r#"{"Action":"Update","Guid":"6f1f4e2a","EntityType":"Company","Id":174,"Fields":{"companyName":"Contoso \u0026 Co"},"EventTime":"2026-11-22T10:00:00.000Z","SequenceNumber":42,"PersonID":1}"#;

fn status(o: &HookOutcome, source: &str) -> u16 {
    o.answer(source).status
}

// R-HOOK-1 R-HOOK-2 R-HOOK-4
#[tokio::test]
async fn r_hook_4_a_valid_connectwise_callback_is_on_the_bus_once() {
    let r = Rig::new(PsaKind::Connectwise).await;
    let body = cw_body("acmemsp", KEY_URL);
    let sig = cw_sig(CW_KEY, body.as_bytes());
    let o = r
        .send("connectwise", TOKEN, body.as_bytes(), Some(&sig))
        .await;
    assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
    assert_eq!(status(&o, "connectwise"), 200);
    let ev = r.w.events.of_type("PsaChanged");
    assert_eq!(ev.len(), 1);
    let d = &ev[0].detail;
    assert_eq!(d["partner"], PARTNER);
    assert_eq!(d["topic"], "company");
    assert_eq!(d["company_id"], "19300");
    assert_eq!(d["entity"], "agreement");
    // The same delivery again: answered 200, nothing more on the bus.
    let again = r
        .send_as(
            PARTNER,
            "connectwise",
            TOKEN,
            body.as_bytes(),
            Some(&sig),
            "req-2",
        )
        .await;
    assert!(matches!(again, HookOutcome::Duplicate { .. }), "{again:?}");
    assert_eq!(status(&again, "connectwise"), 200);
    assert_eq!(r.w.events.published().len(), 1);
}

// R-HOOK-2
#[tokio::test]
async fn r_hook_2_wrong_token_partner_or_source_leave_no_trace() {
    let r = Rig::new(PsaKind::Connectwise).await;
    let body = cw_body("acmemsp", KEY_URL);
    let sig = cw_sig(CW_KEY, body.as_bytes());
    let wrong_token = format!("{}x", &TOKEN[..TOKEN.len() - 1]);
    let rows: [(&str, &str, &str, u16); 6] = [
        (PARTNER, "connectwise", wrong_token.as_str(), 401),
        (PARTNER, "connectwise", "", 401),
        ("other-partner", "connectwise", TOKEN, 404),
        ("../etc", "connectwise", TOKEN, 404),
        (PARTNER, "autotask", TOKEN, 404),
        (PARTNER, "sharepoint", TOKEN, 404),
    ];
    for (partner, source, token, want) in rows {
        let o = r
            .send_as(partner, source, token, body.as_bytes(), Some(&sig), "r")
            .await;
        assert_eq!(
            status(&o, source),
            want,
            "{partner} {source} {token}: {o:?}"
        );
    }
    r.nothing_left();
    assert!(
        r.hooks.fetched().is_empty(),
        "no key fetched before the token passed"
    );
    // The 401's answer names nothing; the log line has the reason.
    let o = r
        .send("connectwise", &wrong_token, body.as_bytes(), Some(&sig))
        .await;
    assert_eq!(
        o.answer("connectwise").body,
        serde_json::json!({"error": "not authenticated"})
    );
}

// R-HOOK-2
#[tokio::test]
async fn r_hook_2_forged_or_altered_connectwise_callbacks_are_refused() {
    let r = Rig::new(PsaKind::Connectwise).await;
    let body = cw_body("acmemsp", KEY_URL);
    let sig = cw_sig(CW_KEY, body.as_bytes());
    let altered = body.replace("\"ID\":77", "\"ID\":78");
    let forged = cw_sig("attacker-key", body.as_bytes());
    for (b, s) in [
        (altered.as_str(), Some(sig.as_str())),
        (body.as_str(), Some(forged.as_str())),
        (body.as_str(), None),
        (body.as_str(), Some("not base64!")),
    ] {
        let o = r.send("connectwise", TOKEN, b.as_bytes(), s).await;
        assert_eq!(status(&o, "connectwise"), 401, "{s:?}: {o:?}");
    }
    r.nothing_left();
}

// R-HOOK-2
#[tokio::test]
async fn r_hook_2_a_key_url_elsewhere_is_refused_without_being_fetched() {
    let r = Rig::new(PsaKind::Connectwise).await;
    for (company, url) in [
        ("acmemsp", "https://evil.example/v4_6_release/callback.ashx?keyid=1"),
        ("acmemsp", "http://api-na.myconnectwise.net/v4_6_release/callback.ashx"),
        ("acmemsp", "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/key"),
        (
            "acmemsp",
            "https://api-na.myconnectwise.net/v4_6_release/callback.ashx?keyid=1&companyId=othermsp",
        ),
        // Another company's callback on the same shared host.
        ("othermsp", KEY_URL),
    ] {
        let body = cw_body(company, url);
        r.hooks.serve_key(url, "attacker-key");
        let sig = cw_sig("attacker-key", body.as_bytes());
        let o = r
            .send("connectwise", TOKEN, body.as_bytes(), Some(&sig))
            .await;
        assert_eq!(status(&o, "connectwise"), 401, "{company} {url}: {o:?}");
    }
    assert!(r.hooks.fetched().is_empty(), "{:?}", r.hooks.fetched());
    r.nothing_left();
}

// R-HOOK-2
#[tokio::test]
async fn r_hook_2_autotask_signature_and_secret() {
    let r = Rig::new(PsaKind::Autotask).await;
    let sig = at_sig(AT_SECRET, AT_BODY.as_bytes());
    let bad = at_sig("another-secret-0123456", AT_BODY.as_bytes());
    let one_byte = AT_BODY.replace("174", "175");
    for (b, s) in [
        (AT_BODY, Some(bad.as_str())),
        (one_byte.as_str(), Some(sig.as_str())),
        (AT_BODY, None),
    ] {
        let o = r.send("autotask", TOKEN, b.as_bytes(), s).await;
        assert_eq!(status(&o, "autotask"), 401, "{o:?}");
    }
    r.nothing_left();
    let o = r
        .send("autotask", TOKEN, AT_BODY.as_bytes(), Some(&sig))
        .await;
    assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
    let ev = r.w.events.of_type("PsaChanged");
    assert_eq!(ev[0].detail["company_id"], "174");
    assert_eq!(ev[0].detail["topic"], "company");

    // A short secret configured: refused whatever the signature.
    let r = Rig::new(PsaKind::Autotask).await;
    let mut s = r.hooks.state().secrets[PARTNER].clone();
    s.autotask_secret = Some(SecretString::from("short"));
    r.hooks.set_secret(PARTNER, s);
    let sig = at_sig("short", AT_BODY.as_bytes());
    let o = r
        .send("autotask", TOKEN, AT_BODY.as_bytes(), Some(&sig))
        .await;
    assert_eq!(status(&o, "autotask"), 401);
    r.nothing_left();
}

// R-HOOK-3
#[tokio::test]
async fn r_hook_3_oversized_malformed_and_unhandled() {
    let r = Rig::new(PsaKind::Autotask).await;
    let big = vec![b' '; MAX_BODY + 1];
    let o = r.send("autotask", TOKEN, &big, Some("sha1=x")).await;
    assert_eq!(status(&o, "autotask"), 413);
    // Signed, but not a notification.
    for (body, want) in [
        (&b"not json"[..], "not JSON"),
        (br#"{"Action":"Update"}"#, "missing"),
    ] {
        let sig = at_sig(AT_SECRET, body);
        let o = r.send("autotask", TOKEN, body, Some(&sig)).await;
        let a = o.answer("autotask");
        assert_eq!(a.status, 400, "{o:?}");
        assert!(a.body["error"].as_str().unwrap().contains(want), "{a:?}");
    }
    r.nothing_left();
    // An entity psa-bridge does not handle, and Autotask's Deactivated: 202, nothing on the bus.
    for body in [
        AT_BODY.replace("\"Company\"", "\"Contact\""),
        AT_BODY.replace("\"Update\"", "\"Deactivated\""),
    ] {
        let sig = at_sig(AT_SECRET, body.as_bytes());
        let o = r.send("autotask", TOKEN, body.as_bytes(), Some(&sig)).await;
        assert_eq!(status(&o, "autotask"), 202, "{o:?}");
    }
    r.nothing_left();
}

// R-HOOK-4
#[tokio::test]
async fn r_hook_4_a_failed_put_is_answered_try_again_and_the_retry_goes_through() {
    for (psa, source) in [
        (PsaKind::Autotask, "autotask"),
        (PsaKind::Connectwise, "connectwise"),
    ] {
        let r = Rig::new(psa).await;
        let (body, sig) = match psa {
            PsaKind::Autotask => (AT_BODY.to_owned(), at_sig(AT_SECRET, AT_BODY.as_bytes())),
            PsaKind::Connectwise => {
                let b = cw_body("acmemsp", KEY_URL);
                let s = cw_sig(CW_KEY, b.as_bytes());
                (b, s)
            }
        };
        r.w.events
            .faults()
            .fail("publish", 1, transient(domain::System::Events));
        let o = r.send(source, TOKEN, body.as_bytes(), Some(&sig)).await;
        let a = o.answer(source);
        // ConnectWise retries 404/409/419/429 only; Autotask and the platform get a 5xx.
        assert_eq!(a.status, if source == "connectwise" { 429 } else { 503 });
        assert!(a.retry_after.is_some());
        assert!(r.w.events.published().is_empty());
        let o = r
            .send_as(PARTNER, source, TOKEN, body.as_bytes(), Some(&sig), "req-2")
            .await;
        assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
        assert_eq!(r.w.events.published().len(), 1);
    }
}

// R-HOOK-4 R-REL-4
#[tokio::test]
async fn r_hook_4_a_duplicate_racing_one_in_flight_retries_and_a_stale_claim_is_taken_over() {
    let r = Rig::new(PsaKind::Autotask).await;
    let sig = at_sig(AT_SECRET, AT_BODY.as_bytes());
    // The first request claimed the delivery and died before its put.
    r.w.events
        .faults()
        .fail("publish", 1, transient(domain::System::Events));
    r.hooks
        .faults()
        .fail("delivery_failed", 1, transient(domain::System::Store));
    let o = r
        .send("autotask", TOKEN, AT_BODY.as_bytes(), Some(&sig))
        .await;
    assert_eq!(status(&o, "autotask"), 503);
    // Its claim stands: a duplicate now is told to try again, and nothing is put twice.
    let o = r
        .send_as(
            PARTNER,
            "autotask",
            TOKEN,
            AT_BODY.as_bytes(),
            Some(&sig),
            "req-2",
        )
        .await;
    assert!(matches!(o, HookOutcome::TryLater { .. }), "{o:?}");
    assert!(r.w.events.published().is_empty());
    r.w.advance(Duration::seconds(31));
    let o = r
        .send_as(
            PARTNER,
            "autotask",
            TOKEN,
            AT_BODY.as_bytes(),
            Some(&sig),
            "req-3",
        )
        .await;
    assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
    assert_eq!(r.w.events.published().len(), 1);
}

// R-HOOK-1 R-HOOK-2 R-HOOK-4
#[tokio::test]
async fn r_hook_1_platform_alerts_with_token_and_optional_signature() {
    let r = Rig::new(PsaKind::Connectwise).await;
    let alert = br#"{"id":"A-1","type":"BackupFailed","severity":"critical","createdAt":"2026-11-22T10:00:00Z","updatedAt":"2026-11-22T10:00:01.5Z","tenant":{"id":"56"},"details":{"planName":"Daily"}}"#;
    let o = r.send("platform", TOKEN, alert, None).await;
    assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
    let ev = r.w.events.of_type("PlatformAlert");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].detail["alert_id"], "A-1");
    assert_eq!(ev[0].detail["cleared"], false);
    // A signing secret configured: the signature is required.
    let mut s = r.hooks.state().secrets[PARTNER].clone();
    let secret = "platform-secret-0123456789";
    s.platform_secret = Some(SecretString::from(secret));
    r.hooks.set_secret(PARTNER, s);
    let cleared = br#"{"id":"A-1","type":"BackupFailed","updatedAt":"2026-11-22T11:00:00Z","deletedAt":"2026-11-22T11:00:00Z","tenant":{"id":"56"}}"#;
    let o = r.send("platform", TOKEN, cleared, None).await;
    assert_eq!(status(&o, "platform"), 401);
    let o = r
        .send(
            "platform",
            TOKEN,
            cleared,
            Some(&platform_signature(secret.as_bytes(), cleared)),
        )
        .await;
    assert!(matches!(o, HookOutcome::Accepted { .. }), "{o:?}");
    let ev = r.w.events.of_type("PlatformAlert");
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].detail["cleared"], true);
}
