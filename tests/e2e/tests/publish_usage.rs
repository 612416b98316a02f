//! publish-usage through its real handler against moto and the fakes (issue 10): the hourly
//! dispatch finds the partner due in its time zone, the work event writes the platform's usage
//! to the ConnectWise PAYG additions — current usage for the month to date, the usage report
//! for a closed month (seed 004) — the history and the event say what was sent, a second run
//! for the same period writes nothing, and a sub-partner's line gets its customers' sum.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::ports::Clock;
use domain::rules::schedule::ReportingPeriod;
use e2e::*;
use serde_json::{json, Value};

fn deps(w: &World) -> publish_usage::Deps {
    publish_usage::Deps {
        store: w.deps.store.clone(),
        events: w.deps.events.clone(),
        connector: w.deps.connector.clone(),
        clock: w.deps.clock.clone(),
        concurrency: 4,
    }
}

async fn invoke(
    w: &World,
    detail_type: &str,
    source: &str,
    detail: Value,
    run: &str,
) -> Result<Value, publish_usage::PublishFailure> {
    let event: EventBridgeEvent<Value> = serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": detail_type, "source": source,
        "account": "123456789012", "time": w.clock.now(), "region": "us-east-1",
        "resources": [], "detail": detail,
    }))
    .unwrap();
    publish_usage::handle(&deps(w), event, run).await
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
    let tenant = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let tenant = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
