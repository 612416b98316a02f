//! sync-tenant with an Autotask partner: the real handler, moto, the Autotask and platform sandbox.

use domain::rules::settings::{AutotaskCredentials, PsaCredentials};
use e2e::*;
use psa_bridge_cli::ops;
use sandbox::{AtNewCompany, AtNewContract};
use serde_json::{json, Value};

const AT_USER: &str = "api@acme-msp.example";
const AT_SECRET: &str = "at-Secret-1";
const AT_CODE: &str = "INTEGRATION-CODE-1";

struct At {
    w: World,
    ws: i64,
    srv: i64,
}

async fn autotask_world() -> At {
    let w = World::bare().await;
    let at = &w.sandbox.autotask;
    at.add_api_user(AT_USER, AT_SECRET, AT_CODE);
    let ws = at.add_service("ACR-WS", "Monthly");
    let srv = at.add_service("ACR-SRV", "Monthly");
    at.add_service("ACR-STOR", "Monthly");
    ops::set_credentials(
        &w.ctx,
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
        .partner_yaml("")
        .replace("psa: connectwise", "psa: autotask")
        .replace(
            "  - { item: mailboxes, product: ACR-O365, free: true }\n",
            "",
        );
    w.apply(&yaml).await.expect("Autotask partner applies");
    At { w, ws, srv }
}

fn contract(at: &At, name: &str, payg: &str) -> (i64, i64) {
    let a = &at.w.sandbox.autotask;
    let c = a.add_company(AtNewCompany {
        name: name.into(),
        company_type: Some("Customer".into()),
        ..Default::default()
    });
    let k = a.add_contract(AtNewContract {
        company_id: c,
        name: format!("{name} backup"),
        status_active: true,
        udfs: vec![("PAYG".into(), payg.into())],
        ..Default::default()
    });
    (c, k)
}

// R-PROV-3 R-PROV-4 R-SET-3
#[tokio::test]
async fn r_prov_3_autotask_contract_payg_field_drives_the_quotas() {
    let at = autotask_world().await;
    let (payg_co, payg_k) = contract(&at, "Payg Co", "Yes");
    at.w.sandbox
        .autotask
        .add_contract_service(payg_k, at.ws, 4.0);
    let (pre_co, pre_k) = contract(&at, "Prepaid Co", "No");
    at.w.sandbox
        .autotask
        .add_contract_service(pre_k, at.srv, 10.0);
    let (odd_co, odd_k) = contract(&at, "Odd Co", "Maybe");
    at.w.sandbox
        .autotask
        .add_contract_service(odd_k, at.ws, 1.0);

    let out = at.w.sync("full").await;
    let failures = out["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{out}");
    assert_eq!(failures[0]["company_id"], odd_co.to_string());
    assert!(
        failures[0]["reason"].as_str().unwrap().contains("PAYG"),
        "a contract that is neither PAYG nor prepaid is reported, not guessed: {out}"
    );
    assert!(at.w.tenant_of(odd_co).is_none());

    let t = at.w.tenant_of(payg_co).expect("PAYG company provisioned");
    let (st, v, _) = at.w.item(t["id"].as_str().unwrap(), "workstations", None);
    assert_eq!((st, v), (1, Value::Null), "PAYG contract -> unlimited");
    let t = at.w.tenant_of(pre_co).expect("prepaid company provisioned");
    let (st, v, o) = at.w.item(t["id"].as_str().unwrap(), "servers", None);
    assert_eq!(
        (st, v.as_f64(), o.as_f64()),
        (1, Some(10.0), Some(10.0)),
        "prepaid -> hard quota of the units"
    );

    // Units change through an adjustment: the quota follows.
    at.w.advance(chrono::Duration::minutes(1));
    let svc = at.w.sandbox.autotask.contract_services(pre_k)[0]["id"]
        .as_i64()
        .unwrap();
    at.w.sandbox.autotask.adjust_units(svc, 5.0);
    at.w.invoke(
        "psa-bridge",
        "PsaChanged",
        json!({"partner": PARTNER, "company_id": pre_co.to_string()}),
    )
    .await
    .unwrap();
    let (_, v, _) = at.w.item(t["id"].as_str().unwrap(), "servers", None);
    assert_eq!(v.as_f64(), Some(15.0));
}

// R-SET-4
#[tokio::test]
async fn r_set_4_autotask_bad_credentials_are_named_and_nothing_stored() {
    let w = World::bare().await;
    w.sandbox.autotask.add_api_user(AT_USER, AT_SECRET, AT_CODE);
    w.sandbox
        .autotask
        .add_user_without_api_access("human@acme-msp.example", "pw-123456");
    let rows = [
        ("nobody@acme-msp.example", AT_SECRET, AT_CODE, "zone"),
        (AT_USER, "wrong-secret", AT_CODE, "secret"),
        (AT_USER, AT_SECRET, "NOT-OUR-CODE", "ntegration code"),
        ("human@acme-msp.example", "pw-123456", AT_CODE, "API"),
    ];
    for (user, secret, code, want) in rows {
        let err = ops::set_credentials(
            &w.ctx,
            PARTNER,
            &w.sandbox.platform.url(),
            PsaCredentials::Autotask(AutotaskCredentials {
                username: user.into(),
                secret: secret.to_owned().into(),
                integration_code: code.to_owned().into(),
            }),
            w.platform_credentials(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("nothing was stored"), "{err}");
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{user}: {err}"
        );
        assert!(
            !err.contains(secret) || secret.len() < 6,
            "no secret in: {err}"
        );
    }
    let stored = w.aws.secretsmanager.list_secrets().send().await.unwrap();
    assert!(stored.secret_list.unwrap_or_default().is_empty());
}
