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

/// The companies a pass planned beyond its line refresh slice (R-PROV-8; the slice's
/// companies are mapped ones, the others here are new).
fn beyond_line_refresh(out: &Value) -> u64 {
    let slice = out["line_refresh"]["companies_total"].as_u64().unwrap_or(0);
    out["companies"].as_u64().unwrap() - slice
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
        beyond_line_refresh(&out),
        1,
        "only the new company is planned: {out}"
    );
    // nothing new: nothing planned (but the line refresh slice, R-PROV-8, which changes nothing)
    let out = w.sync("incremental").await;
    assert_eq!(beyond_line_refresh(&out), 0, "{out}");
    assert_eq!(out["changes"], Value::Array(vec![]), "{out}");
}

// R-REL-4 (issue 8 case 4): a PsaChanged event for a new company while a run of its partner
// holds the partner's lease writes nothing and is folded into that run; the partner's next run
// syncs it. One tenant, no 409 at any later pass.
#[tokio::test]
async fn r_rel_4_a_company_event_during_a_partner_run_is_folded_not_doubled() {
    let w = World::new().await;
    no_failures(&w.sync("full").await);
    w.advance(Duration::minutes(15));
    let (company, agreement) = w.customer("Fabrikam");
    w.addition(agreement, w.products.ws, 0.0, None);
    let held = w
        .deps
        .store
        .lease(PARTNER, "run", "a-pass-in-progress", 300)
        .await
        .unwrap();
    assert!(held.is_some(), "the lease was free");
    let out = w.psa_changed(company).await;
    assert!(
        out["folded"]
            .as_str()
            .is_some_and(|f| f.contains(&company.to_string())),
        "{out}"
    );
    assert_eq!(out["applied"], 0, "{out}");
    assert!(
        w.tenants().is_empty(),
        "nothing created while the other run holds the lease"
    );
    // A partner pass meanwhile does not start either.
    let out = w.sync("incremental").await;
    assert!(
        out["blocked"]
            .as_str()
            .is_some_and(|b| b.contains("another run")),
        "{out}"
    );

    // The run in progress ends; the partner's next run (here another company's event) syncs
    // the folded company.
    w.deps
        .store
        .release(PARTNER, "run", "a-pass-in-progress")
        .await
        .unwrap();
    let (other, a2) = w.customer("Tailspin");
    w.addition(a2, w.products.srv, 0.0, None);
    no_failures(&w.psa_changed(other).await);
    let t = w
        .tenant_of(company)
        .expect("the folded company got its tenant");
    assert!(w.tenant_of(other).is_some());
    assert_eq!(w.tenants().len(), 2);
    let tid = t["id"].as_str().unwrap().to_owned();
    assert_eq!(w.item(&tid, "workstations", None).0, 1);
    assert!(w.deps.store.waiting(PARTNER).await.unwrap().is_empty());
    w.advance(Duration::minutes(15));
    no_failures(&w.sync("incremental").await);
    assert_eq!(w.tenants().len(), 2, "never a second tenant");
}

// R-REL-4 (issue 8 case 4): a SyncPartner and a PsaChanged for a new company at the same time,
// in whatever order they interleave: one tenant, the company mapped, and every later pass quiet.
#[tokio::test]
async fn r_rel_4_two_runs_at_once_leave_one_tenant_and_a_mapped_company() {
    let w = World::new().await;
    let (first, a1) = w.customer("Contoso");
    w.addition(a1, w.products.ws, 0.0, None);
    no_failures(&w.sync("full").await);
    w.advance(Duration::minutes(15));
    let (company, agreement) = w.customer("Northwind");
    w.addition(agreement, w.products.ws, 0.0, None);
    // Slow platform answers keep both runs in flight together.
    w.sandbox.platform.faults().push(
        Fault::new(sandbox::FaultKind::Latency(
            std::time::Duration::from_millis(150),
        ))
        .times(6),
    );
    let (a, b) = tokio::join!(w.sync("incremental"), w.psa_changed(company));
    for out in [&a, &b] {
        assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    }
    // Whichever ran, the company is synced (by that run or the next one that takes the lease).
    if w.tenant_of(company).is_none() {
        w.advance(Duration::minutes(15));
        no_failures(&w.sync("incremental").await);
    }
    let t = w.tenant_of(company).expect("mapped");
    assert!(w.tenant_of(first).is_some());
    assert_eq!(w.tenants().len(), 2, "one tenant per company");
    let rec = w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.tenant_id(), t["id"].as_str());
    for _ in 0..2 {
        w.advance(Duration::minutes(15));
        let out = w.sync("incremental").await;
        no_failures(&out);
        assert_eq!(w.tenants().len(), 2);
    }
}
