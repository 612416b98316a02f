//! Bad input gets a clear error that names the thing, and nothing is half-written.

use domain::rules::settings::PlatformCredentials;
use domain::services::{partners, status};
use e2e::*;
use serde_json::json;

// R-SET-1
#[tokio::test]
async fn unknown_partner_is_named_and_fails_permanently() {
    let w = World::new().await;
    let err = w
        .invoke("psa-bridge", "SyncPartner", json!({"partner": "nobody"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown partner \"nobody\""),
        "{err}"
    );
    assert!(!err.is_retryable());
    let err = w
        .invoke("psa-bridge", "SyncCompany", json!({"partner": PARTNER}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("company_id is required"), "{err}");
    let err = w
        .invoke("someone.else", "Whatever", json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected event someone.else/Whatever"),
        "{err}"
    );
}

// R-SET-2 R-SET-4
#[tokio::test]
async fn r_set_4_missing_secret_is_named_and_shows_on_the_status() {
    let w = World::new().await;
    w.aws
        .secretsmanager
        .delete_secret()
        .secret_id("psa-bridge/acme/platform")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    // a new process: nothing cached
    let deps = w.fresh_deps();
    let err = w
        .invoke_with(
            &deps,
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("psa-bridge/acme/platform does not exist"),
        "{err}"
    );
    let st = status::status(w.ctx.store.as_ref(), PARTNER).await.unwrap();
    let cred = st.status.credentials.expect("credential state recorded");
    assert!(!cred.ok);
    assert!(cred.problem.unwrap().contains("psa-bridge/acme/platform"));
}

// R-SET-3 R-SET-4
#[tokio::test]
async fn r_set_4_wrong_credentials_are_refused_and_nothing_is_stored() {
    let w = World::bare().await;
    let err = partners::set_credentials(
        w.ctx.connector.as_ref(),
        w.ctx.secrets.as_ref(),
        PARTNER,
        &w.sandbox.platform.url(),
        w.psa_credentials("not-the-key"),
        w.platform_credentials(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ConnectWise log-in failed, nothing was stored"),
        "{err}"
    );
    assert!(err.contains("public/private keys"), "{err}");
    assert!(
        !err.contains("not-the-key"),
        "the secret never shows: {err}"
    );
    let err = partners::set_credentials(
        w.ctx.connector.as_ref(),
        w.ctx.secrets.as_ref(),
        PARTNER,
        &w.sandbox.platform.url(),
        w.psa_credentials(CW_PRIVATE),
        PlatformCredentials {
            client_id: w.account.client_id.clone(),
            client_secret: "wrong".to_owned().into(),
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("platform log-in failed, nothing was stored"),
        "{err}"
    );
    let stored = w.aws.secretsmanager.list_secrets().send().await.unwrap();
    assert!(
        stored.secret_list.unwrap_or_default().is_empty(),
        "nothing stored"
    );
}

// R-MAP-5
#[tokio::test]
async fn r_map_5_a_mapping_to_a_product_the_psa_lacks_is_rejected_and_nothing_written() {
    let w = World::bare().await;
    w.set_credentials().await.unwrap();
    let yaml = w.partner_yaml("").replace("ACR-SRV", "ACR-NOPE");
    let err = w.apply(&yaml).await.unwrap_err().to_string();
    assert!(err.contains("product \"ACR-NOPE\" does not exist"), "{err}");
    assert!(w.deps.store.partner(PARTNER).await.unwrap().is_none());
}

// R-CO-3
#[tokio::test]
async fn r_co_3_a_tenant_in_self_service_mode_cannot_be_mapped() {
    let w = World::new().await;
    let (company, _) = w.customer("Selfie");
    let t = w
        .sandbox
        .platform
        .add_customer(&w.account.tenant_id, "Selfie", None);
    w.sandbox.platform.set_tenant_access(&t, true, true);
    let yaml = w.partner_yaml(&format!(
        "companies:\n  - {{ company: Selfie, tenant: {t} }}\n"
    ));
    let err = w.apply(&yaml).await.unwrap_err().to_string();
    assert!(err.contains("self-service"), "{err}");
    assert!(w
        .deps
        .store
        .company(PARTNER, &company.to_string())
        .await
        .unwrap()
        .is_none());
    // support access off: refused too
    w.sandbox.platform.set_tenant_access(&t, false, false);
    let err = w.apply(&yaml).await.unwrap_err().to_string();
    assert!(err.contains("support access disabled"), "{err}");
    // fixed: mapped
    w.sandbox.platform.set_tenant_access(&t, false, true);
    let applied = w.apply(&yaml).await.unwrap();
    assert_eq!(applied.companies_changed, vec![company.to_string()]);
}

// R-SET-1
#[tokio::test]
async fn malformed_partner_file_is_named_and_nothing_written() {
    let w = World::bare().await;
    w.set_credentials().await.unwrap();
    let err = w
        .apply("id: acme\npsa: connectwise\nplatform: { url: x }\nproducts:\n  - { item: workstations, prodcut: ACR-WS }\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("prodcut"), "{err}");
    let err = w.apply("just text").await.unwrap_err().to_string();
    assert!(err.contains("partner file is not valid"), "{err}");
    assert!(w.deps.store.partner(PARTNER).await.unwrap().is_none());
}

// R-CO-5 R-REL-4
#[tokio::test]
async fn r_co_5_a_tenant_is_mapped_to_one_company_only() {
    use domain::model::{CompanyRecord, Mapping};
    let w = World::new().await;
    w.customer("First");
    w.customer("Second");
    let t = w
        .sandbox
        .platform
        .add_customer(&w.account.tenant_id, "Shared", None);
    // in one file
    let both = w.partner_yaml(&format!(
        "companies:\n  - {{ company: First, tenant: {t} }}\n  - {{ company: Second, tenant: {t} }}\n"
    ));
    let err = w.apply(&both).await.unwrap_err().to_string();
    assert!(err.contains("already mapped to company"), "{err}");
    // across files
    let first = w.partner_yaml(&format!(
        "companies:\n  - {{ company: First, tenant: {t} }}\n"
    ));
    w.apply(&first).await.unwrap();
    let second = w.partner_yaml(&format!(
        "companies:\n  - {{ company: Second, tenant: {t} }}\n"
    ));
    let err = w.apply(&second).await.unwrap_err().to_string();
    assert!(err.contains("already mapped to company"), "{err}");
    // and at the store, whatever the caller checked before (a race)
    let rec = CompanyRecord::new("999", "Racer", Mapping::Tenant(t.clone()));
    let err = w.deps.store.put_company(PARTNER, &rec).await.unwrap_err();
    assert!(err.to_string().contains("R-CO-5"), "{err}");
    assert!(w
        .deps
        .store
        .company(PARTNER, "999")
        .await
        .unwrap()
        .is_none());
    // a concurrent writer with a stale version loses
    let stored = w
        .deps
        .store
        .companies(PARTNER)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let mut stale = stored.clone();
    stale.version -= 1;
    assert!(w.deps.store.put_company(PARTNER, &stale).await.is_err());
}

// R-CO-5 R-REL-4: a put that is given the record it replaces reads nothing, and still refuses a
// stale version and keeps a tenant to one company.
#[tokio::test]
async fn r_co_5_a_put_given_the_record_it_replaces_is_as_safe() {
    use domain::model::{CompanyRecord, Mapping};
    use domain::PortError;
    let w = World::new().await;
    let store = &w.deps.store;
    let holder = |t: &'static str| async move { store.tenant_holder(PARTNER, t).await.unwrap() };
    let v1 = store
        .put_company_replacing(
            PARTNER,
            &CompanyRecord::new("501", "Five", Mapping::Tenant("t-a".into())),
            None,
        )
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(holder("t-a").await.as_deref(), Some("501"));
    // a concurrent run moves it to t-b (version 2)
    let v2 = store
        .put_company_replacing(
            PARTNER,
            &CompanyRecord {
                mapping: Mapping::Tenant("t-b".into()),
                ..v1.clone()
            },
            Some(&v1),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(holder("t-a").await, None);
    // a writer still holding version 1 is refused, whichever tenant it writes; the claim the
    // stored record relies on stays, a claim taken only for the refused write does not
    for tenant in ["t-b", "t-c"] {
        let stale = CompanyRecord {
            mapping: Mapping::Tenant(tenant.into()),
            last_error: Some("stale".into()),
            ..v1.clone()
        };
        let err = store
            .put_company_replacing(PARTNER, &stale, Some(&v1))
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Conflict { .. }), "{err}");
        assert_eq!(
            store.company(PARTNER, "501").await.unwrap(),
            Some(v2.clone())
        );
        assert_eq!(holder("t-b").await.as_deref(), Some("501"));
        assert_eq!(holder("t-c").await, None);
    }
    // another company cannot take the tenant, with or without a previous record
    let other = CompanyRecord::new("502", "Other", Mapping::Tenant("t-b".into()));
    let err = store
        .put_company_replacing(PARTNER, &other, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("R-CO-5"), "{err}");
    assert!(store.company(PARTNER, "502").await.unwrap().is_none());
    // a previous record that does not match the version is read from the store instead
    let v3 = store
        .put_company_replacing(
            PARTNER,
            &CompanyRecord {
                mapping: Mapping::Tenant("t-c".into()),
                ..v2.clone()
            },
            Some(&v1),
        )
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(holder("t-b").await, None);
    assert_eq!(holder("t-c").await.as_deref(), Some("501"));
}
