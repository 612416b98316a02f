//! Issue 8, points 8 and 9 through the real handler, moto and the fakes: keys rotated while a
//! process holds them cached, and retries that stop before the invocation's time is up.

use e2e::*;
use sandbox::Fault;
use serde_json::json;
use std::time::Duration;

/// Stores a new PSA secret straight in Secrets Manager, as an operator rotating keys in the
/// console would: the running process's cache still holds the old one.
async fn rotate_psa_secret(w: &World, private_key: &str) {
    let value = json!({
        "psa": "connectwise",
        "site": w.sandbox.connectwise.url(),
        "company_id": CW_COMPANY,
        "public_key": CW_PUBLIC,
        "private_key": private_key,
        "client_id": CW_CLIENT_ID,
    });
    w.aws
        .secretsmanager
        .put_secret_value()
        .secret_id(format!("{}{PARTNER}/psa", w.resources.secret_prefix))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("secret stored");
}

// R-SET-4: the PSA's keys are rotated (the fake takes only the new ones, the secret holds them);
// the warm process's cached keys get a 401, are read again once, and the run goes on.
#[tokio::test]
async fn r_set_4_keys_rotated_under_a_warm_cache_are_read_again_after_a_401() {
    let w = World::new().await;
    let (first, a) = w.customer("Before Rotation");
    w.addition(a, w.products.ws, 3.0, Some("2027-06-30"));
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    assert!(w.tenant_of(first).is_some());

    w.sandbox
        .connectwise
        .add_instance(CW_COMPANY, CW_PUBLIC, "privROTATED789");
    rotate_psa_secret(&w, "privROTATED789").await;
    let (second, a) = w.customer("After Rotation");
    w.addition(a, w.products.ws, 4.0, Some("2027-06-30"));
    w.advance(chrono::Duration::minutes(10));
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let t = w
        .tenant_of(second)
        .expect("the run after the rotation provisioned");
    let (_, v, _) = w.item(t["id"].as_str().unwrap(), "workstations", None);
    assert_eq!(v.as_f64(), Some(4.0));
}

// R-REL-1: with a persistent 503 the retries stop at the invocation's deadline (less the
// margin), not at the policy's own budget, and say so.
#[tokio::test]
async fn r_rel_1_retries_stop_at_the_invocations_deadline() {
    let w = World::new().await;
    let (_, a) = w.customer("Deadline");
    w.addition(a, w.products.ws, 1.0, None);
    w.sandbox
        .connectwise
        .faults()
        .push(Fault::status(503, Some(1)).times(50));
    w.deadline.set_in(Duration::from_millis(400));
    let err = w
        .invoke(
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER, "pass": "full"}),
        )
        .await
        .expect_err("ConnectWise never answers");
    let shown = err.to_string();
    assert!(shown.contains("of this invocation's time left"), "{shown}");
    assert!(!shown.contains("gave up after 6 attempts"), "{shown}");
    // Without a deadline the policy's attempts decide.
    w.deadline.clear();
    w.sandbox.connectwise.faults().clear();
    w.sandbox
        .connectwise
        .faults()
        .push(Fault::status(503, Some(0)).times(50));
    let err = w
        .invoke(
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER, "pass": "full"}),
        )
        .await
        .expect_err("ConnectWise never answers");
    assert!(
        err.to_string().contains("gave up after 6 attempts"),
        "{err}"
    );
}
