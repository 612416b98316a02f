//! sync-tenant end to end: the real handler, moto and the ConnectWise + platform sandbox.

use chrono::Duration;
use e2e::*;
use serde_json::{json, Value};

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

// R-PROV-1 R-PROV-4 R-PROV-5 R-REL-2
#[tokio::test]
async fn r_prov_1_r_prov_4_company_with_agreement_gets_a_tenant_with_its_quotas() {
    let w = World::new().await;
    let (company, agreement) =
        w.customer_with("Contoso", Some(("Ada", "Lovelace", "ada@contoso.example")));
    w.addition(agreement, w.products.ws, 0.0, None); // PAYG
    w.addition(agreement, w.products.srv, 3.0, Some("2027-06-30")); // prepaid
    w.addition(agreement, w.products.stor, 100.0, Some("2027-06-30")); // prepaid storage

    let out = w.sync("full").await;
    assert_eq!(out["blocked"], Value::Null, "{out}");
    let t = w.tenant_of(company).expect("tenant created");
    let tid = t["id"].as_str().unwrap();
    assert_eq!(t["name"], "Contoso");

    let (st, v, o) = w.item(tid, "workstations", None);
    assert_eq!(
        (st, v, o),
        (1, Value::Null, Value::Null),
        "PAYG -> unlimited"
    );
    let (st, v, o) = w.item(tid, "servers", None);
    assert_eq!(
        (st, num(&v), num(&o)),
        (1, 3.0, 3.0),
        "prepaid -> hard quota"
    );
    let (st, v, _) = w.item(tid, "storage", Some(&w.storage()));
    assert_eq!((st, num(&v)), (1, 100.0 * GIB), "prepaid storage in GiB");
    let (st, v, _) = w.item(tid, "mailboxes", None);
    assert_eq!((st, v), (1, Value::Null), "free, no line -> unlimited");

    // The primary contact gets the activation e-mail.
    assert_eq!(
        w.sandbox.platform.activation_emails(),
        vec!["ada@contoso.example".to_owned()]
    );

    // The mapping is recorded.
    let rec = w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.tenant_id(), Some(tid));

    // R-REL-2: the same input again changes nothing.
    let writes = w.sandbox.platform.stats().writes;
    let again = w.sync("full").await;
    assert_eq!(again["changes"], json!([]), "{again}");
    assert_eq!(w.sandbox.platform.stats().writes, writes);
    assert_eq!(w.tenants().len(), 1);
}

// R-PROV-2 R-PROV-4 R-PROV-8
#[tokio::test]
async fn r_prov_4_quota_follows_an_addition_added_changed_and_cancelled() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Fabrikam");
    w.addition(agreement, w.products.ws, 0.0, None);
    w.sync("full").await;
    let tid = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // added: 10 prepaid servers
    w.advance(Duration::minutes(1));
    let srv = w.addition(agreement, w.products.srv, 10.0, Some("2027-01-01"));
    w.psa_changed(company).await;
    let (_, v, o) = w.item(&tid, "servers", None);
    assert_eq!((num(&v), num(&o)), (10.0, 10.0));

    // changed: 12
    w.advance(Duration::minutes(1));
    w.sandbox
        .connectwise
        .update_addition(CW_COMPANY, agreement, srv, |a| a.quantity = 12.0);
    w.psa_changed(company).await;
    let (_, v, _) = w.item(&tid, "servers", None);
    assert_eq!(num(&v), 12.0);

    // a PAYG line of the same product: soft quota 12, unlimited overage
    w.advance(Duration::minutes(1));
    w.addition(agreement, w.products.srv, 0.0, None);
    w.psa_changed(company).await;
    let (_, v, o) = w.item(&tid, "servers", None);
    assert_eq!((num(&v), o), (12.0, Value::Null));

    // cancelled today (both server lines): not counted -> 0
    w.advance(Duration::minutes(1));
    for a in w.sandbox.connectwise.additions(CW_COMPANY, agreement) {
        if a.product.id == w.products.srv {
            w.sandbox
                .connectwise
                .update_addition(CW_COMPANY, agreement, a.id, |a| {
                    a.cancelled_date = Some(day("2026-11-22"))
                });
        }
    }
    w.psa_changed(company).await;
    let (st, v, _) = w.item(&tid, "servers", None);
    assert_eq!((st, num(&v)), (0, 0.0));
}

// R-PROV-6
#[tokio::test]
async fn r_prov_6_a_quota_changed_by_hand_is_set_back_by_the_incremental_pass() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Northwind");
    w.addition(agreement, w.products.srv, 5.0, Some("2027-01-01"));
    w.sync("full").await;
    let tid = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    w.advance(Duration::minutes(5));
    w.sandbox
        .platform
        .set_quota_by_hand(&tid, "servers", None, Some(50.0), Some(50.0));
    w.advance(Duration::minutes(10));
    let out = w.sync("incremental").await;
    assert_eq!(out["scope"], "incremental", "{out}");
    let (_, v, _) = w.item(&tid, "servers", None);
    assert_eq!(num(&v), 5.0, "set back: {out}");
}

// R-PROV-9
#[tokio::test]
async fn r_prov_9_dry_run_lists_every_change_and_changes_nothing() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Tailspin");
    w.addition(agreement, w.products.ws, 0.0, None);
    let before = w.sandbox.platform.stats().writes;
    let out = w
        .invoke(
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER, "pass": "full", "dry_run": true}),
        )
        .await
        .unwrap();
    let changes = out["changes"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|c| c["action"] == "create_tenant" && c["rule"] == "R-PROV-1"));
    assert!(changes.iter().any(|c| c["action"] == "set_quota"
        && c["item"]["name"] == "workstations"
        && c["rule"] == "R-PROV-4"));
    assert_eq!(w.sandbox.platform.stats().writes, before);
    assert!(w.tenant_of(company).is_none());
    assert!(w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .is_none());
}

// R-PROV-7
#[tokio::test]
async fn r_prov_7_deprovisioning_follows_the_clock() {
    let w = World::new().await;
    w.apply(&w.partner_yaml("")).await.unwrap();
    let yaml = w.partner_yaml("").replace(
        "provisioning: { auto_create: true }",
        "provisioning: { auto_create: true, deprovision: { zero_quotas: true, disable_after_days: 7, delete_after_days: 30 } }",
    );
    w.apply(&yaml).await.unwrap();
    let (company, agreement) = w.customer("Litware");
    let line = w.addition(agreement, w.products.ws, 0.0, None);
    w.sync("full").await;
    let tid = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // the only line is cancelled today
    w.advance(Duration::minutes(1));
    w.sandbox
        .connectwise
        .update_addition(CW_COMPANY, agreement, line, |a| {
            a.cancelled_date = Some(day("2026-11-22"))
        });
    w.psa_changed(company).await;
    let (st, v, _) = w.item(&tid, "workstations", None);
    assert_eq!((st, num(&v)), (0, 0.0), "quotas zeroed");
    assert_eq!(w.sandbox.platform.tenant(&tid).unwrap()["enabled"], true);

    // seven days later: disabled (the incremental pass comes back by itself on that day)
    w.set_time(day("2026-11-29") + Duration::hours(1));
    w.sync("incremental").await;
    assert_eq!(w.sandbox.platform.tenant(&tid).unwrap()["enabled"], false);

    // thirty days later: deleted
    w.set_time(day("2026-12-22") + Duration::hours(1));
    w.sync("incremental").await;
    assert!(w
        .sandbox
        .platform
        .tenant(&tid)
        .is_none_or(|t| !t["deleted_at"].is_null()));
}

// R-PROV-10
#[tokio::test]
async fn r_prov_10_guard_stops_a_run_that_would_zero_too_many_quotas() {
    let w = World::new().await;
    let mut agreements = vec![];
    for i in 0..6 {
        let (c, a) = w.customer(&format!("Customer {i}"));
        w.addition(a, w.products.ws, 0.0, None);
        agreements.push((c, a));
    }
    w.sync("full").await;
    // every agreement is cancelled at once (a mistake in the PSA)
    w.advance(Duration::minutes(1));
    for (_, a) in &agreements {
        w.sandbox
            .connectwise
            .update_agreement(CW_COMPANY, *a, |ag| ag.cancelled_flag = true);
    }
    let yaml = w.partner_yaml("").replace(
        "provisioning: { auto_create: true }",
        "provisioning: { auto_create: true, deprovision: { zero_quotas: true } }",
    );
    w.apply(&yaml).await.unwrap();
    let out = w.sync("full").await;
    let blocked = out["blocked"].as_str().expect("guard trips");
    assert!(blocked.contains("R-PROV-10"), "{blocked}");
    let tid = w.tenant_of(agreements[0].0).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.item(&tid, "workstations", None).0, 1, "nothing changed");

    // forced, it applies
    let out = w
        .invoke(
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER, "pass": "full", "force": true}),
        )
        .await
        .unwrap();
    assert_eq!(out["blocked"], Value::Null);
    assert_eq!(w.item(&tid, "workstations", None).0, 0);
}

// R-SET-1 R-PROV-8
#[tokio::test]
async fn dispatch_puts_one_work_event_per_enabled_partner_and_full_pass_follows_the_cadence() {
    let w = World::new().await;
    let mut other = w.deps.store.partner(PARTNER).await.unwrap().unwrap();
    other.id = "dormant".into();
    other.enabled = false;
    other.version = 0;
    w.deps.store.put_partner(&other).await.unwrap();
    let out = w
        .invoke("psa-bridge.schedule", "SyncDispatch", json!({}))
        .await
        .unwrap();
    assert_eq!(out["dispatched"], 1, "only the enabled partner");
    // the plain EventBridge schedule event works too
    let out = w
        .invoke("aws.events", "Scheduled Event", json!({}))
        .await
        .unwrap();
    assert_eq!(out["dispatched"], 1);

    // the first incremental pass is a full one; then incremental until the cadence is due
    assert_eq!(w.sync("incremental").await["scope"], "full");
    w.advance(Duration::minutes(15));
    assert_eq!(w.sync("incremental").await["scope"], "incremental");
    w.advance(Duration::hours(24));
    assert_eq!(w.sync("incremental").await["scope"], "full");
}

// R-CO-4
#[tokio::test]
async fn r_co_4_a_failing_company_is_recorded_with_its_reason_and_the_others_go_on() {
    let w = World::new().await;
    let (good, ga) = w.customer("Good Co");
    w.addition(ga, w.products.ws, 0.0, None);
    let (bad, ba) = w.customer("Bad Co");
    w.addition(ba, w.products.ws, 0.0, None);
    let t = w
        .sandbox
        .platform
        .add_customer(&w.account.tenant_id, "Bad Co", None);
    let yaml = w.partner_yaml(&format!(
        "companies:\n  - {{ company: BadCo, tenant: {t} }}\n"
    ));
    w.apply(&yaml).await.unwrap();
    // the tenant is switched to self-service after it was mapped: it can no longer be managed
    w.sandbox.platform.set_tenant_access(&t, true, true);
    let out = w.sync("full").await;
    let failures = out["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{out}");
    assert!(failures[0]["reason"]
        .as_str()
        .unwrap()
        .contains("self-service"));
    assert!(w.tenant_of(good).is_some(), "the others go on");
    let rec = w
        .deps
        .store
        .company(PARTNER, &bad.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(rec.last_error.unwrap().contains("self-service"));
    assert!(rec.last_sync.is_some());
    let st = domain::services::status::status(w.ctx.store.as_ref(), PARTNER)
        .await
        .unwrap();
    assert_eq!(st.failing.len(), 1);
}
