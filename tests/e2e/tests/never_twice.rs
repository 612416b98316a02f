//! sync-tenant under partial failure: never stuck, never twice (issue 8 cases 1 and 5), through
//! the real handler against moto and the sandbox.

use chrono::Duration;
use e2e::*;
use sandbox::Fault;
use serde_json::Value;

fn trial_partner(w: &World) -> String {
    w.partner_yaml("").replace(
        "provisioning: { auto_create: true }",
        "provisioning: { auto_create: true, mode: trial, two_factor: true }",
    )
}

// R-PROV-11: a follow-up step of a new tenant fails (here: its pricing mode). The next
// incremental pass — and a company pass — adopt the tenant instead of failing on the
// platform's 409 "already exists", even after the company was renamed; one tenant only.
#[tokio::test]
async fn r_prov_11_a_failed_follow_up_step_never_leaves_the_company_stuck_or_doubled() {
    let w = World::new().await;
    w.apply(&trial_partner(&w)).await.unwrap();
    let (company, agreement) = w.customer("Contoso");
    w.addition(agreement, w.products.ws, 0.0, None);
    w.sandbox.platform.faults().push(
        Fault::status(400, None)
            .method("PUT")
            .path_contains("/pricing")
            .times(1),
    );
    let out = w.sync("full").await;
    assert_eq!(out["failures"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(w.tenants().len(), 1, "the tenant was created");

    // renamed in the PSA before the next pass
    w.advance(Duration::minutes(15));
    w.sandbox
        .connectwise
        .update_company(CW_COMPANY, company, |c| c.name = "Contoso Ltd".into());
    let out = w.sync("incremental").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    assert_eq!(w.tenants().len(), 1, "never a second tenant");
    let t = w.tenant_of(company).expect("mapped to its tenant");
    let rec = w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.tenant_id(), t["id"].as_str());
    assert_eq!(rec.last_error, None);
    let tid = t["id"].as_str().unwrap().to_owned();
    assert_eq!(w.item(&tid, "workstations", None).0, 1, "its quotas follow");
    // the step that failed was completed: the tenant is in trial mode, with two-factor on
    let t = w.sandbox.platform.tenant(&tid).unwrap();
    assert_eq!(t["pricing_mode"], "trial", "{t}");
    assert_eq!(t["mfa_status"], "enabled", "{t}");
    assert!(rec.pending_setup.is_empty(), "{rec:?}");

    // a webhook's company pass afterwards changes nothing and creates nothing
    w.advance(Duration::minutes(1));
    let out = w
        .invoke(
            "psa-bridge",
            "PsaChanged",
            serde_json::json!({"partner": PARTNER, "company_id": company.to_string()}),
        )
        .await
        .unwrap();
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    assert_eq!(w.tenants().len(), 1);
}

// R-CO-7: two PSA companies with the same name: the second gets a tenant under a unique name
// (its PSA identifier appended) instead of failing with 409 at every pass.
#[tokio::test]
async fn r_co_7_two_companies_with_the_same_name_both_get_a_tenant() {
    let w = World::new().await;
    let (first, a1) = w.customer("Northwind");
    w.addition(a1, w.products.ws, 0.0, None);
    no_failures(&w.sync("full").await);
    w.advance(Duration::minutes(15));
    let (second, a2) = w.customer("Northwind");
    w.sandbox
        .connectwise
        .update_company(CW_COMPANY, second, |c| c.identifier = "Northwind2".into());
    w.addition(a2, w.products.srv, 0.0, None);
    let out = w.sync("incremental").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    let t1 = w.tenant_of(first).expect("first");
    let t2 = w.tenant_of(second).expect("second");
    assert_eq!(t1["name"], "Northwind");
    assert_eq!(t2["name"], "Northwind (Northwind2)");
    let described: Vec<&str> = out["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["unique_name"].as_str())
        .collect();
    assert_eq!(described, vec!["Northwind (Northwind2)"], "{out}");
    // and the next pass is quiet
    w.advance(Duration::minutes(15));
    let out = w.sync("incremental").await;
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    assert_eq!(w.tenants().len(), 2);
}

fn no_failures(out: &Value) {
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
}

// R-PROV-8: a PSA change stamped in the same second as the cursor (ConnectWise stamps whole
// seconds) is still seen by the next incremental pass, and one already seen is not re-planned.
#[tokio::test]
async fn r_prov_8_a_change_in_the_same_second_as_the_cursor_is_not_skipped() {
    let w = World::new().await;
    no_failures(&w.sync("full").await);
    w.advance(Duration::minutes(15));
    let (first, a1) = w.customer("Same Second One");
    w.addition(a1, w.products.ws, 0.0, None);
    let out = w.sync("incremental").await;
    no_failures(&out);
    assert!(w.tenant_of(first).is_some(), "{out}");
    // the clock has not moved: this change carries the cursor's own second
    let (second, a2) = w.customer("Same Second Two");
    w.addition(a2, w.products.ws, 0.0, None);
    let out = w.sync("incremental").await;
    no_failures(&out);
    assert!(w.tenant_of(second).is_some(), "never skipped: {out}");
    assert_eq!(
        out["companies"], 1,
        "only the new company is planned: {out}"
    );
    // nothing new: nothing planned
    let out = w.sync("incremental").await;
    assert_eq!(out["companies"], 0, "{out}");
}
