//! publish-usage through its real handler against moto and the fakes (issue 10, so far the
//! current month): the hourly dispatch finds the partner due in its time zone, the work event
//! writes the platform's current usage to the ConnectWise PAYG additions, the history and the
//! event say what was sent, and a second run for the same day writes nothing.

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
    // Usage publishing on, the current month (the partner file refuses the switch until
    // publish-usage reads usage reports as well).
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
