//! Line changes without a webhook (issue 8 case 4, R-PROV-8): a ConnectWise addition edit that
//! leaves its agreement's `lastUpdated` alone, and an Autotask unit adjustment (which never
//! touches the contract), reach the platform through the incremental passes' rolling line
//! refresh within `sync.line_refresh_hours` — through the real handler against moto and the
//! fakes, driven over the vendors' HTTP APIs.

use chrono::Duration;
use domain::rules::settings::{AutotaskCredentials, PsaCredentials};
use domain::services::partners;
use e2e::*;
use reqwest::{Client, StatusCode};
use sandbox::{AtNewCompany, AtNewContract};
use serde_json::{json, Value};

const PREPAID_UNTIL: &str = "2027-06-30";

fn no_failures(out: &Value) {
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
    assert_eq!(out["blocked"], Value::Null, "{out}");
}

fn tenant_id(w: &World, company: i64) -> String {
    w.tenant_of(company).expect("provisioned")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn servers(w: &World, tenant: &str) -> Option<f64> {
    w.item(tenant, "servers", None).1.as_f64()
}

/// The companies a pass re-read for line edits (its line refresh slice).
fn refreshed(out: &Value) -> Vec<String> {
    out["line_refresh"]["companies"]
        .as_array()
        .map(|cs| cs.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Three ConnectWise companies, each with a prepaid server addition of 3, synced by a full
/// pass; `hours` is the partner's `sync.line_refresh_hours`. Returns (company, agreement,
/// addition) of each.
async fn cw_world(hours: u32) -> (World, Vec<(i64, i64, i64)>) {
    let w = World::new().await;
    w.apply(&w.partner_yaml(&format!(
        "sync: {{ full_every_hours: 24, line_refresh_hours: {hours} }}\n"
    )))
    .await
    .expect("partner applies");
    let mut cos = Vec::new();
    for name in ["Lines One", "Lines Two", "Lines Three"] {
        let (c, a) = w.customer(name);
        let l = w.addition(a, w.products.srv, 3.0, Some(PREPAID_UNTIL));
        cos.push((c, a, l));
    }
    no_failures(&w.sync("full").await);
    for (c, _, _) in &cos {
        assert_eq!(servers(&w, &tenant_id(&w, *c)), Some(3.0));
    }
    (w, cos)
}

/// Sets an addition's quantity the way a person in Manage does: PATCH over the vendor API.
async fn patch_quantity(w: &World, agreement: i64, addition: i64, qty: f64) {
    let r = Client::new()
        .patch(format!(
            "{}/v2025_1/apis/3.0/finance/agreements/{agreement}/additions/{addition}",
            w.sandbox.connectwise.url()
        ))
        .basic_auth(format!("{CW_COMPANY}+{CW_PUBLIC}"), Some(CW_PRIVATE))
        .header("clientId", CW_CLIENT_ID)
        .json(&json!([{"op": "replace", "path": "quantity", "value": qty}]))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(r.status(), StatusCode::OK);
}

/// The fake's switch, through its control API.
async fn addition_edits_touch_agreement(w: &World, on: bool) {
    let r = Client::new()
        .post(format!(
            "{}/_sandbox/connectwise/addition-edits",
            w.sandbox.connectwise.url()
        ))
        .json(&json!({ "touch_agreement": on }))
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

// R-PROV-8 (issue 8 case 4): with the fake's addition edits leaving the agreement alone (its
// default), an addition's quantity edited in ConnectWise reaches the platform by the rolling
// line refresh: `line_refresh_hours: 1` at a pass every 15 minutes is 4 passes an hour, one of
// the three mapped companies a pass, so within 3 passes. The companies whose lines did not
// change plan nothing, and the change is made once.
#[tokio::test]
async fn r_prov_8_a_connectwise_addition_edit_that_leaves_its_agreement_alone_reaches_the_platform()
{
    let (w, cos) = cw_world(1).await;
    let (company, agreement, addition) = cos[2];
    let tenant = tenant_id(&w, company);
    w.advance(Duration::minutes(15));
    let before = w
        .sandbox
        .connectwise
        .agreement(CW_COMPANY, agreement)
        .unwrap()
        .info
        .last_updated;
    patch_quantity(&w, agreement, addition, 7.0).await;
    assert_eq!(
        w.sandbox
            .connectwise
            .agreement(CW_COMPANY, agreement)
            .unwrap()
            .info
            .last_updated,
        before,
        "the agreement's lastUpdated did not move"
    );
    let mut reached = None;
    let mut outs = Vec::new();
    for pass in 1..=4 {
        w.advance(Duration::minutes(15));
        let out = w.sync("incremental").await;
        no_failures(&out);
        if reached.is_none() && servers(&w, &tenant) == Some(7.0) {
            assert!(refreshed(&out).contains(&company.to_string()), "{out}");
            reached = Some(pass);
        }
        outs.push(out);
    }
    let pass = reached.unwrap_or_else(|| {
        panic!("the edit did not reach the platform within the refresh period: {outs:?}")
    });
    assert!(pass <= 3, "3 mapped companies, 1 a pass: pass {pass}");
    let mut changes = 0;
    for out in &outs {
        assert_eq!(out["scope"], "incremental", "{out}");
        assert_eq!(
            out["line_refresh"]["reason"],
            "line refresh slice (R-PROV-8)"
        );
        assert_eq!(out["line_refresh"]["mapped"], 3, "{out}");
        assert_eq!(out["line_refresh"]["every_hours"], 1, "{out}");
        assert_eq!(refreshed(out).len(), 1, "{out}");
        let cs = out["changes"].as_array().unwrap();
        assert!(
            cs.iter()
                .all(|c| c["company_id"].as_str() == Some(company.to_string().as_str())),
            "only the edited company changes: {out}"
        );
        changes += cs.len();
    }
    assert_eq!(changes, 1, "made once");
}

// R-PROV-8 (issue 8 case 4): with the fake's addition edits touching the agreement, the very
// next incremental pass picks the edit up through the agreement's change time, whatever the
// line refresh slice holds.
#[tokio::test]
async fn r_prov_8_a_connectwise_addition_edit_that_touches_its_agreement_is_picked_up_by_the_next_pass(
) {
    let (w, cos) = cw_world(168).await;
    addition_edits_touch_agreement(&w, true).await;
    // the last company by id: the first slice (smallest id first) does not hold it
    let (company, agreement, addition) = cos[2];
    let tenant = tenant_id(&w, company);
    w.advance(Duration::minutes(15));
    patch_quantity(&w, agreement, addition, 9.0).await;
    w.advance(Duration::minutes(15));
    let out = w.sync("incremental").await;
    no_failures(&out);
    assert!(
        !refreshed(&out).contains(&company.to_string()),
        "picked up by its agreement's change, not the slice: {out}"
    );
    assert_eq!(servers(&w, &tenant), Some(9.0), "{out}");
    // and the next pass is quiet
    w.advance(Duration::minutes(15));
    let out = w.sync("incremental").await;
    no_failures(&out);
    assert_eq!(out["changes"], Value::Array(vec![]), "{out}");
}

const AT_USER: &str = "api@acme-msp.example";
const AT_SECRET: &str = "at-Secret-1";
const AT_CODE: &str = "INTEGRATION-CODE-1";

// R-PROV-8 (issue 8 case 4): an Autotask unit adjustment (a ContractServiceAdjustment POSTed
// over the API; the contract's lastModifiedDateTime does not move, and there is no webhook)
// reaches the platform by the rolling line refresh within `line_refresh_hours`.
#[tokio::test]
async fn r_prov_8_an_autotask_unit_adjustment_reaches_the_platform_within_the_refresh_period() {
    let w = World::bare().await;
    let at = &w.sandbox.autotask;
    at.add_api_user(AT_USER, AT_SECRET, AT_CODE);
    let srv = at.add_service("ACR-SRV", "Monthly");
    at.add_service("ACR-WS", "Monthly");
    at.add_service("ACR-STOR", "Monthly");
    partners::set_credentials(
        w.ctx.connector.as_ref(),
        w.ctx.secrets.as_ref(),
        PARTNER,
        &w.sandbox.platform.url(),
        PsaCredentials::Autotask(AutotaskCredentials {
            username: AT_USER.into(),
            secret: AT_SECRET.to_owned().into(),
            integration_code: AT_CODE.to_owned().into(),
        }),
        w.platform_credentials(),
    )
    .await
    .expect("Autotask credentials verified and stored");
    let yaml = w
        .partner_yaml("sync: { line_refresh_hours: 1 }\n")
        .replace("psa: connectwise", "psa: autotask")
        .replace(
            "  - { item: mailboxes, product: ACR-O365, free: true }\n",
            "",
        );
    w.apply(&yaml).await.expect("Autotask partner applies");
    let mut cos = Vec::new();
    for name in ["Units One", "Units Two", "Units Three"] {
        let c = at.add_company(AtNewCompany {
            name: name.into(),
            company_type: Some("Customer".into()),
            ..Default::default()
        });
        let k = at.add_contract(AtNewContract {
            company_id: c,
            name: format!("{name} backup"),
            status_active: true,
            udfs: vec![("PAYG".into(), "No".into())],
            ..Default::default()
        });
        let cs = at.add_contract_service(k, srv, 3.0);
        cos.push((c, k, cs));
    }
    no_failures(&w.sync("full").await);
    let (company, contract, service) = cos[1];
    let tenant = tenant_id(&w, company);
    assert_eq!(servers(&w, &tenant), Some(3.0));

    w.advance(Duration::minutes(15));
    let modified = at.contract(contract).unwrap().last_modified_date_time;
    let today = domain::ports::Clock::now(w.clock.as_ref()).date_naive();
    let r = Client::new()
        .post(format!(
            "{}/ATServicesRest/V1.0/ContractServiceAdjustments",
            at.url()
        ))
        .header("ApiIntegrationCode", AT_CODE)
        .header("UserName", AT_USER)
        .header("Secret", AT_SECRET)
        .json(
            &json!({"contractID": contract, "contractServiceID": service, "unitChange": 4,
                      "effectiveDate": format!("{today}T00:00:00")}),
        )
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(at.units(service), 7.0);
    assert_eq!(
        at.contract(contract).unwrap().last_modified_date_time,
        modified,
        "the contract's lastModifiedDateTime did not move"
    );
    let mut reached = None;
    let mut outs = Vec::new();
    for pass in 1..=4 {
        w.advance(Duration::minutes(15));
        let out = w.sync("incremental").await;
        no_failures(&out);
        if reached.is_none() && servers(&w, &tenant) == Some(7.0) {
            reached = Some(pass);
        }
        outs.push(out);
    }
    let pass = reached.unwrap_or_else(|| {
        panic!("the adjustment did not reach the platform within the refresh period: {outs:?}")
    });
    assert!(pass <= 3, "pass {pass}");
    for out in &outs {
        assert_eq!(refreshed(out).len(), 1, "{out}");
    }
}
