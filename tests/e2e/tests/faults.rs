//! Faults: bursts of 429/500 and dropped responses. The run completes with retries, no
//! duplicate tenant (a retried create finds its tenant by customer_id), no lost update.

use e2e::*;
use sandbox::{Fault, FaultKind};
use serde_json::Value;

// R-REL-1 R-REL-2
#[tokio::test]
async fn r_rel_1_bursts_of_429_and_500_are_retried_to_completion() {
    let w = World::new().await;
    let mut companies = vec![];
    for i in 0..5 {
        let (c, a) = w.customer(&format!("Burst {i}"));
        w.addition(a, w.products.ws, 0.0, None);
        w.addition(a, w.products.srv, 2.0, Some("2027-01-01"));
        companies.push(c);
    }
    let cw = w.sandbox.connectwise.faults();
    cw.push(Fault::status(429, Some(0)).times(3));
    cw.push(Fault::status(500, None).path_contains("additions").times(3));
    let pf = w.sandbox.platform.faults();
    pf.push(
        Fault::status(429, Some(1))
            .path_contains("/tenants")
            .times(2),
    );
    pf.push(Fault::status(503, None).method("PUT").times(3));
    let out = w.sync("full").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    for c in companies {
        let t = w.tenant_of(c).expect("one tenant each");
        let (_, v, _) = w.item(t["id"].as_str().unwrap(), "servers", None);
        assert_eq!(v.as_f64(), Some(2.0));
    }
    assert!(
        w.sandbox.connectwise.faults().pending().is_empty(),
        "every fault fired"
    );
    assert!(
        w.sandbox.platform.faults().pending().is_empty(),
        "every fault fired"
    );
}

// R-REL-2
#[tokio::test]
async fn r_rel_2_a_lost_create_answer_never_makes_a_second_tenant() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Dropped");
    w.addition(agreement, w.products.ws, 0.0, None);
    w.sandbox.platform.faults().push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("POST")
            .path_contains("/api/2/tenants")
            .times(1),
    );
    let out = w.sync("full").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    let t = w.tenant_of(company).expect("exactly one tenant");
    assert_eq!(w.tenants().len(), 1);
    let (st, _, _) = w.item(t["id"].as_str().unwrap(), "workstations", None);
    assert_eq!(st, 1, "the quotas were applied to the found tenant");
}

// R-REL-2 R-REL-4
#[tokio::test]
async fn r_rel_2_a_lost_quota_answer_is_retried_without_losing_the_update() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Lossy");
    w.addition(agreement, w.products.srv, 7.0, Some("2027-01-01"));
    w.sandbox.platform.faults().push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("PUT")
            .path_contains("offering_items")
            .times(1),
    );
    let out = w.sync("full").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    let t = w.tenant_of(company).unwrap();
    let (_, v, o) = w.item(t["id"].as_str().unwrap(), "servers", None);
    assert_eq!((v.as_f64(), o.as_f64()), (Some(7.0), Some(7.0)));
}

// R-PROV-1 R-CO-4: a new tenant's mapping is written once, after its quotas; when the quotas
// fail, the record still maps the tenant (with the error), and the next pass completes it
// without a second tenant.
#[tokio::test]
async fn r_prov_1_a_quota_failure_after_a_create_keeps_the_mapping() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Refused");
    w.addition(agreement, w.products.srv, 3.0, Some("2027-01-01"));
    w.sandbox.platform.faults().push(
        Fault::new(FaultKind::Status {
            code: 400,
            retry_after_secs: None,
        })
        .method("PUT")
        .path_contains("offering_items")
        .times(1),
    );
    let out = w.sync("full").await;
    assert_eq!(out["failures"].as_array().map(Vec::len), Some(1), "{out}");
    let t = w.tenant_of(company).expect("its tenant was created");
    let tid = t["id"].as_str().unwrap().to_owned();
    let rec = w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.tenant_id(), Some(tid.as_str()));
    assert!(rec.last_error.is_some());
    assert_eq!(
        w.deps.store.tenant_holder(PARTNER, &tid).await.unwrap(),
        Some(company.to_string())
    );
    w.advance(chrono::Duration::minutes(15));
    let out = w.sync("full").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    assert_eq!(w.tenants().len(), 1);
    let (_, v, _) = w.item(&tid, "servers", None);
    assert_eq!(v.as_f64(), Some(3.0));
}
