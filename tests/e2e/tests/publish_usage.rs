//! publish-usage through its real handler against moto and the fakes (issue 10): the hourly
//! dispatch finds the partner due in its time zone, the work event writes the platform's usage
//! to the ConnectWise PAYG additions — current usage for the month to date, the usage report
//! for a closed month (seed 004) — the history and the event say what was sent, a second run
//! for the same period writes nothing, and a sub-partner's line gets its customers' sum.

use domain::rules::schedule::ReportingPeriod;
use e2e::*;
use serde_json::{json, Value};

fn deps(w: &World) -> publish_usage::Deps {
    deps_sending(w, Default::default())
}

fn deps_sending(w: &World, sent: std::sync::Arc<Sent>) -> publish_usage::Deps {
    w.publish_deps(std::sync::Arc::new(Recording {
        to: w.deps.events.clone(),
        sent,
    }))
}

async fn invoke(
    w: &World,
    detail_type: &str,
    source: &str,
    detail: Value,
    run: &str,
) -> Result<Value, publish_usage::PublishFailure> {
    invoke_with(&deps(w), w, detail_type, source, detail, run).await
}

async fn invoke_with(
    deps: &publish_usage::Deps,
    w: &World,
    detail_type: &str,
    source: &str,
    detail: Value,
    run: &str,
) -> Result<Value, publish_usage::PublishFailure> {
    w.invoke_publish(deps, detail_type, source, detail, run)
        .await
}

fn quantity(w: &World, agreement: i64, addition: i64) -> f64 {
    w.sandbox
        .connectwise
        .addition(CW_COMPANY, agreement, addition)
        .expect("the addition exists")
        .quantity
}

#[tokio::test]
async fn r_use_1_r_use_6_r_use_9_the_current_month_reaches_the_payg_additions_once_a_day() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Usage Co");
    let ws = w.addition(agreement, w.products.ws, 0.0, None);
    let stor = w.addition(agreement, w.products.stor, 0.0, None);
    let prepaid = w.addition(agreement, w.products.srv, 4.0, Some("2027-06-30"));
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let tenant = w.tenant_id_of(company);
    w.sandbox
        .platform
        .set_usage(&tenant, "workstations", None, 6.0);
    w.sandbox.platform.set_usage(
        &tenant,
        "storage",
        Some(&w.storage()),
        60.0 * 1_073_741_824.0,
    );
    w.sandbox.platform.set_usage(&tenant, "servers", None, 9.0);
    // Usage publishing on, the current month.
    let mut p = w.deps.store.partner(PARTNER).await.unwrap().unwrap();
    p.switches.usage = true;
    p.usage_period = ReportingPeriod::CurrentMonth;
    w.deps.store.put_partner(&p).await.unwrap();

    let out = invoke(
        &w,
        "PublishDispatch",
        "psa-bridge.schedule",
        json!({}),
        "r0",
    )
    .await
    .unwrap();
    assert_eq!(out["dispatched"], 1, "{out}");
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER}),
        "r1",
    )
    .await
    .unwrap();
    let rec = &out["publishes"][0];
    assert_eq!(rec["result"], "published", "{out}");
    assert_eq!(quantity(&w, agreement, ws), 6.0);
    assert_eq!(quantity(&w, agreement, stor), 60.0);
    assert_eq!(
        quantity(&w, agreement, prepaid),
        4.0,
        "prepaid untouched (R-PROV-4)"
    );
    let h = w.deps.store.publish_history(PARTNER).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].changed_lines(), 2);
    // The same day again: not due, nothing dispatched, nothing written.
    let out = invoke(
        &w,
        "PublishDispatch",
        "psa-bridge.schedule",
        json!({}),
        "r2",
    )
    .await
    .unwrap();
    assert_eq!(out["dispatched"], 0, "{out}");
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER}),
        "r3",
    )
    .await
    .unwrap();
    assert_eq!(out["publishes"], json!([]), "{out}");
    // A manual publish with a bad period is refused, naming it.
    let err = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example", "period": "2026-13"}),
        "r4",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("\"2026-13\""), "{err}");
}

const GIB: f64 = 1_073_741_824.0;

#[tokio::test]
async fn r_use_2_r_use_5_seed_004_a_closed_billing_month_publishes_its_report_figures() {
    let w = World::new().await;
    let cw = &w.sandbox.connectwise;
    let class1 = cw.add_product(CW_COMPANY, "ACR-STOR free", "Cloud storage, class 1 (GB)");
    let class2 = cw.add_product(CW_COMPANY, "ACR-STOR billed", "Cloud storage, class 2 (GB)");
    let yaml = w.partner_yaml("").replace(
        "product: ACR-STOR, default: true }",
        "product: ACR-STOR, class1: ACR-STOR free, class2: ACR-STOR billed, default: true }",
    );
    w.apply(&yaml)
        .await
        .expect("the partner file with class products applies");
    let (company, agreement) = w.customer("Billing Co");
    let ws = w.addition(agreement, w.products.ws, 0.0, None);
    let total = w.addition(agreement, w.products.stor, 0.0, None);
    let free = w.addition(agreement, class1, 0.0, None);
    let billed = w.addition(agreement, class2, 0.0, None);
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let tenant = w.tenant_id_of(company);
    w.set_time(day("2026-12-01") + chrono::Duration::hours(3));
    // November's usage, as the platform's history holds it (seed 004: 60 GB used, 10 GB class 1
    // and 50 GB class 2).
    let pf = &w.sandbox.platform;
    let nov = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let infra = w.storage();
    pf.set_usage_on(nov(23), &tenant, "workstations", None, None, 6.0);
    pf.set_usage_on(nov(25), &tenant, "storage", Some(&infra), None, 60.0 * GIB);
    pf.set_usage_on(
        nov(25),
        &tenant,
        "storage",
        Some(&infra),
        Some("storage_class1"),
        10.0 * GIB,
    );
    pf.set_usage_on(
        nov(25),
        &tenant,
        "storage",
        Some(&infra),
        Some("storage_class2"),
        50.0 * GIB,
    );
    let mut p = w.deps.store.partner(PARTNER).await.unwrap().unwrap();
    p.switches.usage = true;
    p.usage_period = ReportingPeriod::BillingMonth { day: 1 };
    w.deps.store.put_partner(&p).await.unwrap();

    // 1 December, 03:00: the month is due, but the platform's history of 30 November is not
    // built before 6 am: nothing is written, the period stays due.
    pf.set_usage(&tenant, "workstations", None, 9.0);
    let tick = |run: &'static str| {
        invoke(
            &w,
            "PublishPartner",
            "psa-bridge",
            json!({"partner": PARTNER}),
            run,
        )
    };
    let out = tick("n1").await.unwrap();
    assert_eq!(out["publishes"][0]["result"], "not_ready", "{out}");
    assert_eq!(quantity(&w, agreement, free), 0.0);
    // 07:00: ready; the report's figures reach every line of the storage (R-USE-2), and the
    // workstations line gets November's 6, not today's 9.
    w.set_time(day("2026-12-01") + chrono::Duration::hours(7));
    let out = tick("n2").await.unwrap();
    let rec = &out["publishes"][0];
    assert_eq!(rec["result"], "published", "{out}");
    assert_eq!(rec["period"], "2026-11", "{out}");
    assert_eq!(quantity(&w, agreement, free), 10.0);
    assert_eq!(quantity(&w, agreement, billed), 50.0);
    assert_eq!(quantity(&w, agreement, total), 60.0);
    assert_eq!(quantity(&w, agreement, ws), 6.0);
    // Published once: the next tick has nothing to do.
    let out = tick("n3").await.unwrap();
    assert_eq!(out["publishes"], json!([]), "{out}");
    // The same period published again by hand, after the usage changed: the same numbers.
    pf.set_usage_as(
        &tenant,
        "storage",
        Some(&infra),
        "storage_class2",
        80.0 * GIB,
    );
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example", "period": "2026-11"}),
        "n4",
    )
    .await
    .unwrap();
    let rec = &out["publishes"][0];
    assert_eq!(rec["result"], "published", "{out}");
    let billed_id = billed.to_string();
    let sent: Vec<&Value> = rec["companies"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["line_id"].as_str() == Some(billed_id.as_str()))
        .collect();
    assert_eq!(sent.len(), 1, "{out}");
    assert_eq!(
        sent[0]["new"], 50.0,
        "the report's figure, not today's 80: {out}"
    );
    assert_eq!(quantity(&w, agreement, billed), 50.0);
    assert_eq!(
        pf.reports(),
        Vec::<Value>::new(),
        "every usage report is removed after use"
    );
}

#[tokio::test]
async fn r_co_6_r_use_3_a_sub_partner_is_provisioned_and_billed_for_its_customers() {
    let w = World::new().await;
    let pf = &w.sandbox.platform;
    let sub = pf.add_sub_partner(&w.account.tenant_id, "Reseller tenant");
    let deep = [
        pf.add_customer(&sub, "Reseller customer 1", None),
        pf.add_customer(&sub, "Reseller customer 2", None),
    ];
    let (company, agreement) = w.customer("Reseller");
    let ws = w.addition(agreement, w.products.ws, 0.0, None);
    let company_id = company.to_string();
    let map = |tenant: &str| {
        let (w, company_id) = (&w, &company_id);
        let request = domain::rules::companies::MappingRequest::Existing(tenant.to_owned());
        async move {
            domain::services::companies::map(
                w.ctx.store.as_ref(),
                w.ctx.connector.as_ref(),
                PARTNER,
                company_id,
                &request,
            )
            .await
        }
    };
    map(&sub).await.expect("a sub-partner maps");
    // Its customers are its own: one of them cannot be mapped to another company as well
    // (the platform's listing under the partner does not hold it), so it is never billed twice.
    let (end, _) = w.customer("End Co");
    let err = domain::services::companies::map(
        w.ctx.store.as_ref(),
        w.ctx.connector.as_ref(),
        PARTNER,
        &end.to_string(),
        &domain::rules::companies::MappingRequest::Existing(deep[1].clone()),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:?}").contains("does not exist under this partner"),
        "{err:?}"
    );
    // Provisioned like a customer: the PAYG workstations item is on and unlimited.
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let items = pf.offering_items(&sub);
    let on = items
        .iter()
        .find(|i| i["name"] == "workstations")
        .expect("workstations");
    assert_eq!(on["status"], 1, "{items:?}");
    // Billed for its customers' usage, not for the sub-partner's own figure.
    pf.set_quota_by_hand(&deep[0], "workstations", None, None, None);
    pf.set_quota_by_hand(&deep[1], "workstations", None, None, None);
    pf.set_usage(&deep[0], "workstations", None, 3.0);
    pf.set_usage(&deep[1], "workstations", None, 4.0);
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example"}),
        "s1",
    )
    .await
    .unwrap();
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    assert_eq!(quantity(&w, agreement, ws), 7.0);
    // The partner's own tenant is refused, naming the rule.
    let err = map(&w.account.tenant_id).await.unwrap_err();
    assert!(format!("{err:?}").contains("R-CO-6"), "{err:?}");
}

#[tokio::test]
async fn r_use_4_r_use_7_publish_now_for_two_of_five_and_a_broken_company_fails_alone() {
    let w = World::new().await;
    let mut companies = Vec::new();
    for n in 0..5 {
        let (company, agreement) = w.customer(&format!("Company {n}"));
        let ws = w.addition(agreement, w.products.ws, 0.0, None);
        companies.push((company, agreement, ws));
    }
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    for (company, _, _) in &companies {
        let t = w.tenant_id_of(*company);
        w.sandbox.platform.set_usage(&t, "workstations", None, 2.0);
    }
    // R-USE-4: publish now for two of the five.
    let picked = [companies[0].0.to_string(), companies[3].0.to_string()];
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example", "companies": picked}),
        "p1",
    )
    .await
    .unwrap();
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    let got: Vec<f64> = companies
        .iter()
        .map(|(_, a, l)| quantity(&w, *a, *l))
        .collect();
    assert_eq!(got, vec![2.0, 0.0, 0.0, 2.0, 0.0]);
    // R-USE-7: company 1's record points at a tenant the platform does not have; it fails
    // alone, with that reason, and the others publish.
    let mut broken = w
        .deps
        .store
        .company(PARTNER, &companies[1].0.to_string())
        .await
        .unwrap()
        .unwrap();
    broken.mapping = domain::model::Mapping::Tenant("00000000-0000-4000-8000-00000000dead".into());
    w.deps.store.put_company(PARTNER, &broken).await.unwrap();
    let sent = std::sync::Arc::new(Sent::default());
    let out = invoke_with(
        &deps_sending(&w, sent.clone()),
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example"}),
        "p2",
    )
    .await
    .unwrap();
    let rec = &out["publishes"][0];
    assert_eq!(rec["result"], "partly_failed", "{out}");
    let failed: Vec<&Value> = rec["companies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error"].is_string())
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["company_id"], companies[1].0.to_string());
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("00000000-0000-4000-8000-00000000dead"),
        "{out}"
    );
    let got: Vec<f64> = companies
        .iter()
        .map(|(_, a, l)| quantity(&w, *a, *l))
        .collect();
    assert_eq!(got, vec![2.0, 0.0, 2.0, 2.0, 2.0]);
    // R-USE-9: the event says so.
    assert_eq!(sent.of_type("UsagePublishPartlyFailed").len(), 1);
}

#[tokio::test]
async fn r_use_10_wrong_psa_keys_fail_the_run_which_is_told_kept_and_retried_at_the_next_tick() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Keys Co");
    let ws = w.addition(agreement, w.products.ws, 0.0, None);
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let t = w.tenant_id_of(company);
    w.sandbox.platform.set_usage(&t, "workstations", None, 5.0);
    let mut p = w.deps.store.partner(PARTNER).await.unwrap().unwrap();
    p.switches.usage = true;
    p.usage_period = ReportingPeriod::CurrentMonth;
    w.deps.store.put_partner(&p).await.unwrap();
    // The PSA's keys are changed there, not here.
    w.sandbox
        .connectwise
        .add_instance(CW_COMPANY, CW_PUBLIC, "privCHANGED000");
    let sent = std::sync::Arc::new(Sent::default());
    let d = deps_sending(&w, sent.clone());
    let tick = |run: &'static str| {
        invoke_with(
            &d,
            &w,
            "PublishPartner",
            "psa-bridge",
            json!({"partner": PARTNER}),
            run,
        )
    };
    let out = tick("k1").await.unwrap();
    assert_eq!(out["publishes"][0]["result"], "failed", "{out}");
    assert_eq!(quantity(&w, agreement, ws), 0.0);
    let h = w.deps.store.publish_history(PARTNER).await.unwrap();
    assert_eq!(h.len(), 1, "the failure is in the history");
    assert!(
        h[0].error.as_deref().unwrap_or("").contains("credentials"),
        "{:?}",
        h[0].error
    );
    assert_eq!(sent.of_type("UsagePublishFailed").len(), 1);
    // Keys put right; the next tick publishes the same day.
    w.sandbox
        .connectwise
        .add_instance(CW_COMPANY, CW_PUBLIC, CW_PRIVATE);
    w.advance(chrono::Duration::hours(1));
    let out = tick("k2").await.unwrap();
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    assert_eq!(quantity(&w, agreement, ws), 5.0);
    assert_eq!(sent.of_type("UsagePublished").len(), 1);
}

#[tokio::test]
async fn r_use_10_storms_of_429_and_500_and_a_lost_answer_end_with_exactly_the_target_figures() {
    use sandbox::{Fault, FaultKind};
    let w = World::new().await;
    let mut lines = Vec::new();
    for n in 0..3 {
        let (company, agreement) = w.customer(&format!("Storm {n}"));
        let ws = w.addition(agreement, w.products.ws, 1.0, None);
        lines.push((company, agreement, ws));
    }
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    for (n, (company, _, _)) in lines.iter().enumerate() {
        let t = w.tenant_id_of(*company);
        w.sandbox
            .platform
            .set_usage(&t, "workstations", None, 10.0 + n as f64);
    }
    let cw = w.sandbox.connectwise.faults();
    cw.push(Fault::status(429, Some(0)).method("PATCH").times(3));
    cw.push(
        Fault::status(500, None)
            .method("GET")
            .path_contains("/additions")
            .times(3),
    );
    cw.push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("PATCH")
            .times(1),
    );
    w.sandbox
        .platform
        .faults()
        .push(Fault::status(500, None).path_contains("/usages").times(2));
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example"}),
        "storm",
    )
    .await
    .unwrap();
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    let got: Vec<f64> = lines.iter().map(|(_, a, l)| quantity(&w, *a, *l)).collect();
    assert_eq!(got, vec![10.0, 11.0, 12.0]);
    assert!(cw.pending().is_empty(), "every fault fired");
    assert!(w.sandbox.platform.faults().pending().is_empty());
}

#[tokio::test]
async fn r_prov_4_r_use_1_prepaid_plus_payg_of_one_product_publishes_to_the_payg_line() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Combined Co");
    // Seed 001: 4 servers prepaid, the excess billed through the PAYG line ("less included").
    let prepaid = w.addition(agreement, w.products.srv, 4.0, Some("2027-06-30"));
    let payg = w.addition(agreement, w.products.srv, 0.0, None);
    let out = w.sync("full").await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let t = w.tenant_id_of(company);
    // R-PROV-4: a soft quota of 4 with unlimited overage.
    let (status, value, overage) = w.item(&t, "servers", None);
    assert_eq!(
        (status, value.as_f64(), overage.as_f64()),
        (1, Some(4.0), None)
    );
    w.sandbox.platform.set_usage(&t, "servers", None, 9.0);
    let out = invoke(
        &w,
        "PublishPartner",
        "psa-bridge",
        json!({"partner": PARTNER, "initiator": "finance@acme.example"}),
        "c1",
    )
    .await
    .unwrap();
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    assert_eq!(quantity(&w, agreement, payg), 9.0, "the whole usage");
    assert_eq!(
        quantity(&w, agreement, prepaid),
        4.0,
        "the prepaid line is the quota"
    );
}
