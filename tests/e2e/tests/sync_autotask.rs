//! sync-tenant with an Autotask partner: the real handler, moto, the Autotask and platform sandbox.

use domain::rules::settings::{AutotaskCredentials, PsaCredentials};
use domain::services::partners;
use e2e::*;
use sandbox::{AtNewCompany, AtNewContract, Fault, FaultKind};
use serde_json::{json, Value};

const AT_USER: &str = "api@acme-msp.example";
const AT_SECRET: &str = "at-Secret-1";
const AT_CODE: &str = "INTEGRATION-CODE-1";

struct At {
    w: World,
    ws: i64,
    srv: i64,
    stor_free: i64,
    stor_billed: i64,
    azure: i64,
}

async fn autotask_world() -> At {
    autotask_world_with("").await
}

/// An Autotask partner with the demo services and storage usage products; `extra` is appended
/// to the partner file.
async fn autotask_world_with(extra: &str) -> At {
    let w = World::bare().await;
    let at = &w.sandbox.autotask;
    at.add_api_user(AT_USER, AT_SECRET, AT_CODE);
    at.add_billing_code("Cloud services");
    let ws = at.add_service("ACR-WS", "Monthly");
    let srv = at.add_service("ACR-SRV", "Monthly");
    at.add_service("ACR-STOR", "Monthly");
    let stor_free = at.add_service("ACR-STOR free", "Monthly");
    let stor_billed = at.add_service("ACR-STOR billed", "Monthly");
    let azure = at.add_service("ACR-AZURE", "Monthly");
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
        .partner_yaml(extra)
        .replace("psa: connectwise", "psa: autotask")
        .replace(
            "  - { item: mailboxes, product: ACR-O365, free: true }\n",
            "",
        )
        // Seed 004: backup storage free, with class 1 and class 2 usage products (R-MAP-3).
        .replace(
            "product: ACR-STOR, default: true }",
            "product: ACR-STOR, class1: ACR-STOR free, class2: ACR-STOR billed, free: true, \
             default: true }",
        );
    w.apply(&yaml).await.expect("Autotask partner applies");
    At {
        w,
        ws,
        srv,
        stor_free,
        stor_billed,
        azure,
    }
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
        let err = partners::set_credentials(
            w.ctx.connector.as_ref(),
            w.ctx.secrets.as_ref(),
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

fn no_failures(out: &Value) {
    assert_eq!(out["failures"], Value::Array(vec![]), "{out}");
}

fn tenant_id(at: &At, company: i64) -> String {
    at.w.tenant_of(company).expect("tenant")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// (status, value, overage) of the default storage.
fn storage(at: &At, company: i64) -> (i64, Option<f64>, Option<f64>) {
    let infra = at.w.account.default_infra_id.clone();
    let (st, v, o) =
        at.w.item(&tenant_id(at, company), "storage", Some(infra.as_str()));
    (st, v.as_f64(), o.as_f64())
}

// R-MAP-3 R-PROV-3 R-PROV-4
#[tokio::test]
async fn r_map_3_seed_004_storage_scenarios_and_a_contract_flipped_from_prepaid_to_payg() {
    let at = autotask_world().await;
    let a = &at.w.sandbox.autotask;
    let (prepaid, prepaid_k) = contract(&at, "Prepaid class 2", "No");
    a.add_contract_service(prepaid_k, at.stor_billed, 100.0);
    let (payg2, k2) = contract(&at, "PAYG class 2", "Yes");
    a.add_contract_service(k2, at.stor_billed, 0.0);
    let (payg12, k12) = contract(&at, "PAYG class 1 and 2", "Yes");
    a.add_contract_service(k12, at.stor_free, 0.0);
    a.add_contract_service(k12, at.stor_billed, 0.0);
    no_failures(&at.w.sync("full").await);

    // Seed 004 "PREPAID Class 2 (billed) usage": 100 GB prepaid -> a hard 100 GB quota.
    let gb100 = Some(100.0 * GIB);
    assert_eq!(storage(&at, prepaid), (1, gb100, gb100));
    // "PAYG Class 2 (billed) usage" and "PAYG Class 1 and Class 2 usage": unlimited.
    assert_eq!(storage(&at, payg2), (1, None, None));
    assert_eq!(storage(&at, payg12), (1, None, None));

    // The contract is flipped from prepaid to PAYG: the next incremental pass sees it.
    at.w.advance(chrono::Duration::minutes(15));
    a.update_contract(prepaid_k, |c| {
        for u in c
            .user_defined_fields
            .iter_mut()
            .filter(|u| u.name == "PAYG")
        {
            u.value = Some("Yes".into());
        }
    });
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(storage(&at, prepaid), (1, None, None));
}

/// An Autotask partner with two-way sync on and the Azure product mapped.
async fn two_way_world() -> At {
    autotask_world_with(
        "switches: { two_way_sync: true }\n\
         two_way: { allocation_code: Cloud services, period_type: monthly }\n\
         public_cloud:\n  - { vendor: azure, product: ACR-AZURE }\n",
    )
    .await
}

/// A company with a prepaid contract holding 5 workstations, synced once.
async fn synced_prepaid(at: &At, name: &str) -> (i64, i64, String) {
    let (co, k) = contract(at, name, "No");
    at.w.sandbox.autotask.add_contract_service(k, at.ws, 5.0);
    no_failures(&at.w.sync("full").await);
    let t = tenant_id(at, co);
    let (st, v, _) = at.w.item(&t, "workstations", None);
    assert_eq!((st, v.as_f64()), (1, Some(5.0)));
    at.w.advance(chrono::Duration::minutes(15));
    (co, k, t)
}

/// Units today of each service on the contract: (service id, units).
fn services(at: &At, contract: i64) -> Vec<(i64, f64)> {
    let a = &at.w.sandbox.autotask;
    let mut out: Vec<(i64, f64)> = a
        .contract_services(contract)
        .iter()
        .map(|cs| {
            (
                cs["serviceID"].as_i64().unwrap(),
                a.units(cs["id"].as_i64().unwrap()),
            )
        })
        .collect();
    out.sort_by_key(|(s, _)| *s);
    out
}

// R-TWO-1
#[tokio::test]
async fn r_two_1_a_service_turned_on_or_off_on_the_platform_follows_into_the_contract() {
    let at = two_way_world().await;
    let (_, k, t) = synced_prepaid(&at, "Two Way Co").await;
    let p = &at.w.sandbox.platform;

    // Servers turned on by a person with 3: the contract gets the service with 3 units.
    p.set_quota_by_hand(&t, "servers", None, Some(3.0), Some(3.0));
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(services(&at, k), vec![(at.ws, 5.0), (at.srv, 3.0)]);
    let (st, v, _) = at.w.item(&t, "servers", None);
    assert_eq!(
        (st, v.as_f64()),
        (1, Some(3.0)),
        "kept as the person set it"
    );

    // Workstations turned off: its units go to 0 and it is not turned back on.
    at.w.advance(chrono::Duration::minutes(15));
    p.set_status_by_hand(&t, "workstations", None, false);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(services(&at, k), vec![(at.ws, 0.0), (at.srv, 3.0)]);
    assert_eq!(at.w.item(&t, "workstations", None).0, 0);

    // A full pass later changes nothing on either side.
    at.w.advance(chrono::Duration::hours(25));
    let out = at.w.sync("full").await;
    no_failures(&out);
    assert_eq!(services(&at, k), vec![(at.ws, 0.0), (at.srv, 3.0)]);
    assert_eq!(at.w.item(&t, "workstations", None).0, 0);
    assert_eq!(at.w.item(&t, "servers", None).0, 1);

    // The person's change is settled: when the PSA takes the servers away, the PSA wins.
    at.w.advance(chrono::Duration::minutes(15));
    let srv_line = at.w.sandbox.autotask.contract_services(k)[1]["id"]
        .as_i64()
        .unwrap();
    at.w.sandbox.autotask.adjust_units(srv_line, -3.0);
    no_failures(&at.w.sync("full").await);
    assert_eq!(services(&at, k), vec![(at.ws, 0.0), (at.srv, 0.0)]);
    let (st, v, _) = at.w.item(&t, "servers", None);
    assert_eq!((st, v.as_f64()), (0, Some(0.0)), "set back to the contract");
}

// R-TWO-2 R-MAP-4
#[tokio::test]
async fn r_two_2_azure_storages_1_to_n_enable_one_product_and_disabling_them_all_removes_it() {
    let at = two_way_world().await;
    let p = &at.w.sandbox.platform;
    let az1 = p.add_storage(&at.w.account.tenant_id, "Azure 1", "azure");
    let az2 = p.add_storage(&at.w.account.tenant_id, "Azure 2", "azure");
    let (co, k, t) = synced_prepaid(&at, "Azure Co").await;

    p.set_status_by_hand(&t, "storage", Some(&az1), true);
    p.set_status_by_hand(&t, "storage", Some(&az2), true);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(
        services(&at, k),
        vec![(at.ws, 5.0), (at.azure, 1.0)],
        "one Azure product for two Azure storages"
    );
    // The vendor's storages are left as the person set them; the platform's own storage is
    // independent of them (still assigned as the default storage).
    assert_eq!(at.w.item(&t, "storage", Some(&az1)).0, 1);
    assert_eq!(storage(&at, co).0, 1);

    at.w.advance(chrono::Duration::minutes(15));
    p.set_status_by_hand(&t, "storage", Some(&az1), false);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(services(&at, k), vec![(at.ws, 5.0), (at.azure, 1.0)]);

    at.w.advance(chrono::Duration::minutes(15));
    p.set_status_by_hand(&t, "storage", Some(&az2), false);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(services(&at, k), vec![(at.ws, 5.0), (at.azure, 0.0)]);
}

// R-TWO-1 R-TWO-2
#[tokio::test]
async fn r_two_2_the_platforms_own_storage_next_to_azure_is_synced_on_its_own() {
    let at = two_way_world().await;
    let p = &at.w.sandbox.platform;
    let az = p.add_storage(&at.w.account.tenant_id, "Azure 1", "azure");
    let (co, k) = contract(&at, "Both Co", "No");
    at.w.sandbox
        .autotask
        .add_contract_service(k, at.stor_billed, 100.0);
    no_failures(&at.w.sync("full").await);
    let t = tenant_id(&at, co);
    at.w.advance(chrono::Duration::minutes(15));
    p.set_status_by_hand(&t, "storage", Some(&az), true);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(
        services(&at, k),
        vec![(at.stor_billed, 100.0), (at.azure, 1.0)],
        "Acronis storage and Azure in parallel"
    );
    // The platform's own storage is disabled: its service goes, Azure stays, and the default
    // storage is not assigned back.
    at.w.advance(chrono::Duration::minutes(15));
    let infra = at.w.account.default_infra_id.clone();
    p.set_status_by_hand(&t, "storage", Some(&infra), false);
    at.w.advance(chrono::Duration::minutes(1));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(
        services(&at, k),
        vec![(at.stor_billed, 0.0), (at.azure, 1.0)]
    );
    assert_eq!(storage(&at, co).0, 0);
}

// R-TWO-1 R-REL-2
#[tokio::test]
async fn r_two_1_a_service_is_never_added_twice_under_lost_answers_or_concurrent_runs() {
    let at = two_way_world().await;
    let (_, k, t) = synced_prepaid(&at, "Racy Co").await;
    at.w.sandbox
        .platform
        .set_quota_by_hand(&t, "servers", None, Some(4.0), Some(4.0));
    at.w.advance(chrono::Duration::minutes(1));
    // The answers to the service create and to the adjustment are lost once each.
    let faults = at.w.sandbox.autotask.faults();
    faults.push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("POST")
            .path_contains("/Services")
            .times(1),
    );
    faults.push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("POST")
            .path_contains("ServiceAdjustments")
            .times(1),
    );
    // Two runs at the same time (a schedule tick and an operator's run).
    let detail = json!({"partner": PARTNER, "pass": "incremental"});
    let (a, b) = tokio::join!(
        at.w.invoke("psa-bridge", "SyncPartner", detail.clone()),
        at.w.invoke("psa-bridge", "SyncPartner", detail.clone()),
    );
    a.unwrap();
    b.unwrap();
    // Whatever failed is picked up by the next pass.
    at.w.advance(chrono::Duration::minutes(15));
    no_failures(&at.w.sync("incremental").await);
    assert_eq!(
        services(&at, k),
        vec![(at.ws, 5.0), (at.srv, 4.0)],
        "one service, units not doubled"
    );
    assert!(faults.pending().is_empty(), "every fault fired");
}

// R-MAP-5 R-TWO-1
#[tokio::test]
async fn bad_input_a_service_id_that_does_not_exist_or_an_unknown_allocation_code_stores_nothing() {
    let at = autotask_world().await;
    let base =
        at.w.partner_yaml("")
            .replace("psa: connectwise", "psa: autotask")
            .replace(
                "  - { item: mailboxes, product: ACR-O365, free: true }\n",
                "",
            );
    let before = at.w.ctx.store.partner(PARTNER).await.unwrap();
    let rows = [
        (
            base.replace("product: ACR-SRV", "product: \"999999\""),
            "product \"999999\" does not exist",
        ),
        (
            format!(
                "{base}switches: {{ two_way_sync: true }}\n\
                 two_way: {{ allocation_code: Nope, period_type: monthly }}\n"
            ),
            "allocation_code \"Nope\" does not exist",
        ),
        (
            format!("{base}public_cloud:\n  - {{ vendor: azure, product: \"424242\" }}\n"),
            "public cloud Microsoft Azure: product \"424242\" does not exist",
        ),
    ];
    for (yaml, want) in rows {
        let err = at.w.apply(&yaml).await.unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert_eq!(
            at.w.ctx.store.partner(PARTNER).await.unwrap(),
            before,
            "nothing stored for: {want}"
        );
    }
}

// R-PROV-3
#[tokio::test]
async fn r_prov_3_the_payg_field_name_is_the_partners_own() {
    let at = autotask_world_with("autotask: { payg_field: Acronis PAYG }\n").await;
    let a = &at.w.sandbox.autotask;
    let company = a.add_company(AtNewCompany {
        name: "Named Field Co".into(),
        company_type: Some("Customer".into()),
        ..Default::default()
    });
    let k = a.add_contract(AtNewContract {
        company_id: company,
        name: "Backup".into(),
        status_active: true,
        udfs: vec![
            ("PAYG".into(), "No".into()),
            ("Acronis PAYG".into(), "Yes".into()),
        ],
        ..Default::default()
    });
    a.add_contract_service(k, at.ws, 4.0);
    no_failures(&at.w.sync("full").await);
    let (st, v, _) = at.w.item(&tenant_id(&at, company), "workstations", None);
    assert_eq!((st, v), (1, Value::Null), "PAYG by the partner's field");
}

// R-TWO-1 R-MAP-5
#[tokio::test]
async fn r_two_1_services_the_file_asks_for_are_created_with_the_allocation_code_and_period_type() {
    let at = two_way_world().await;
    let a = &at.w.sandbox.autotask;
    let code = a.add_billing_code("Backup services");
    let yaml =
        at.w.partner_yaml(
            "switches: { two_way_sync: true }\n\
             two_way: { allocation_code: Backup services, period_type: quarterly }\n",
        )
        .replace("psa: connectwise", "psa: autotask")
        .replace(
            "  - { item: mailboxes, product: ACR-O365, free: true }\n",
            "  - { item: vms, product: ACR-VM, create: true }\n",
        );
    // Nothing is created while another part of the file is wrong.
    let bad = yaml.replace("product: ACR-SRV", "product: ACR-NOPE");
    let err = at.w.apply(&bad).await.unwrap_err().to_string();
    assert!(err.contains("ACR-NOPE"), "{err}");
    assert!(a.services_named("ACR-VM").is_empty());

    at.w.apply(&yaml).await.expect("applies");
    let created = a.services_named("ACR-VM");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].billing_code_id, Some(code));
    assert_eq!(created[0].period_type, 2, "Quarterly");
    let p = at.w.ctx.store.partner(PARTNER).await.unwrap().unwrap();
    let vms = p
        .mapping
        .items
        .iter()
        .find(|m| m.item.name == "vms")
        .unwrap();
    assert_eq!(
        vms.product.as_ref().unwrap().id,
        created[0].id.to_string(),
        "the mapping names the new service"
    );
    // Applying again creates nothing more.
    at.w.apply(&yaml).await.expect("applies again");
    assert_eq!(a.services_named("ACR-VM").len(), 1);

    // Without two-way defaults, `create` is refused.
    let no_defaults = yaml
        .replace("switches: { two_way_sync: true }\n", "")
        .replace(
            "two_way: { allocation_code: Backup services, period_type: quarterly }\n",
            "",
        )
        .replace("ACR-VM", "ACR-VM2");
    let err = at.w.apply(&no_defaults).await.unwrap_err().to_string();
    assert!(
        err.contains("create needs an Autotask partner with two_way"),
        "{err}"
    );
    assert!(a.services_named("ACR-VM2").is_empty());
}

// R-PROV-1 R-PROV-7
#[tokio::test]
async fn r_prov_1_and_7_seed_004_provisioning_settings_with_an_autotask_partner() {
    let at = autotask_world_with("").await;
    // Seed 004 settings: accounts named after the primary contact (with activation e-mail),
    // automatic creation, two-factor authentication, trial mode; deprovisioning on.
    let yaml = at
        .w
        .partner_yaml("")
        .replace("psa: connectwise", "psa: autotask")
        .replace(
            "  - { item: mailboxes, product: ACR-O365, free: true }\n",
            "",
        )
        .replace(
            "provisioning: { auto_create: true }",
            "provisioning: { auto_create: true, tenant_name: primary_contact, two_factor: true, \
             mode: trial, deprovision: { zero_quotas: true, disable_after_days: 7 } }",
        );
    at.w.apply(&yaml).await.unwrap();
    let a = &at.w.sandbox.autotask;
    let company = a.add_company(AtNewCompany {
        name: "Fabrikam".into(),
        company_type: Some("Customer".into()),
        primary_contact: Some((
            "Grace".into(),
            "Hopper".into(),
            "grace@fabrikam.example".into(),
        )),
    });
    let k = a.add_contract(AtNewContract {
        company_id: company,
        name: "Backup".into(),
        status_active: true,
        udfs: vec![("PAYG".into(), "No".into())],
        ..Default::default()
    });
    a.add_contract_service(k, at.ws, 2.0);
    no_failures(&at.w.sync("full").await);
    let t = at.w.tenant_of(company).expect("created automatically");
    assert_eq!(t["name"], "Grace Hopper");
    assert_eq!(t["mfa_status"], "enabled");
    assert_eq!(t["pricing_mode"], "trial");
    assert_eq!(
        at.w.sandbox.platform.activation_emails(),
        vec!["grace@fabrikam.example".to_owned()]
    );
    let tid = t["id"].as_str().unwrap().to_owned();

    // The contract is set inactive: quotas to 0 at once, the tenant disabled 7 days later.
    at.w.advance(chrono::Duration::minutes(15));
    a.update_contract(k, |c| c.status = 0);
    no_failures(&at.w.sync("incremental").await);
    let (st, v, _) = at.w.item(&tid, "workstations", None);
    assert_eq!((st, v.as_f64()), (0, Some(0.0)));
    assert_eq!(at.w.sandbox.platform.tenant(&tid).unwrap()["enabled"], true);
    at.w.set_time(day("2026-11-29") + chrono::Duration::hours(1));
    at.w.sync("incremental").await;
    assert_eq!(
        at.w.sandbox.platform.tenant(&tid).unwrap()["enabled"],
        false
    );
}

// R-USE-1 R-REL-2: publish-usage's Autotask write is a unit adjustment of the difference; an
// answer lost after Autotask applied it never doubles it.
#[tokio::test]
async fn r_use_1_published_units_are_adjusted_once_even_when_the_answer_is_lost() {
    let at = autotask_world().await;
    let (co, k) = contract(&at, "Usage Co", "Yes");
    let cs = at.w.sandbox.autotask.add_contract_service(k, at.ws, 2.0);
    no_failures(&at.w.sync("full").await);
    let t = tenant_id(&at, co);
    at.w.sandbox
        .platform
        .set_usage(&t, "workstations", None, 7.0);
    let faults = at.w.sandbox.autotask.faults();
    faults.push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("POST")
            .path_contains("ServiceAdjustments")
            .times(1),
    );
    let deps = at.w.publish_deps(at.w.deps.events.clone());
    let publish = |run: &'static str| {
        let detail = json!({"partner": PARTNER, "initiator": "finance@acme.example"});
        let (w, deps) = (&at.w, &deps);
        async move {
            w.invoke_publish(deps, "PublishPartner", "psa-bridge", detail, run)
                .await
                .unwrap()
        }
    };
    let out = publish("run-1").await;
    assert_eq!(out["publishes"][0]["result"], "failed", "{out}");
    assert_eq!(
        at.w.sandbox.autotask.units(cs),
        7.0,
        "applied, its answer lost"
    );
    let out = publish("run-2").await;
    assert_eq!(out["publishes"][0]["result"], "published", "{out}");
    assert_eq!(at.w.sandbox.autotask.units(cs), 7.0, "not adjusted twice");
    assert!(faults.pending().is_empty(), "the fault fired");
}

// R-USE-2 R-USE-5, seed 004 (an Autotask guide): 60 GB used, 10 GB class 1 and 50 GB class 2 in
// November; the billing month published on 1 December from the platform's usage report puts
// 10 units on the free line and 50 on the billed one.
#[tokio::test]
async fn r_use_2_seed_004_the_class_1_and_class_2_lines_get_their_own_figures() {
    let at = autotask_world().await;
    let (co, k) = contract(&at, "Storage Co", "Yes");
    let a = &at.w.sandbox.autotask;
    let free = a.add_contract_service(k, at.stor_free, 0.0);
    let billed = a.add_contract_service(k, at.stor_billed, 0.0);
    no_failures(&at.w.sync("full").await);
    let t = tenant_id(&at, co);
    at.w.set_time(day("2026-12-01") + chrono::Duration::hours(7));
    let pf = &at.w.sandbox.platform;
    let infra = at.w.account.default_infra_id.clone();
    let nov25 = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    const GIB: f64 = 1_073_741_824.0;
    for (usage_name, gib) in [
        (None, 60.0),
        (Some("storage_class1"), 10.0),
        (Some("storage_class2"), 50.0),
    ] {
        pf.set_usage_on(nov25, &t, "storage", Some(&infra), usage_name, gib * GIB);
    }
    let mut p = at.w.deps.store.partner(PARTNER).await.unwrap().unwrap();
    p.switches.usage = true;
    p.usage_period = domain::rules::schedule::ReportingPeriod::BillingMonth { day: 1 };
    at.w.deps.store.put_partner(&p).await.unwrap();
    let deps = at.w.publish_deps(at.w.deps.events.clone());
    let out =
        at.w.invoke_publish(
            &deps,
            "PublishPartner",
            "psa-bridge",
            json!({"partner": PARTNER}),
            "s004",
        )
        .await
        .unwrap();
    let rec = &out["publishes"][0];
    assert_eq!(rec["result"], "published", "{out}");
    assert_eq!(rec["period"], "2026-11", "{out}");
    assert_eq!(a.units(free), 10.0);
    assert_eq!(a.units(billed), 50.0);
}
