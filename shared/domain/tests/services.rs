//! The partner, company and status services over the in-memory ports.

use domain::model::{Mapping, PeriodType, PsaKind};
use domain::ports::CompanyStore;
use domain::rules::companies::MappingRequest;
use domain::services::sync::Scope;
use domain::services::{companies, partners, status, OpError};
use domain::testing::*;

/// The demo partner's file; `extra` is appended.
fn partner_file(extra: &str) -> String {
    format!(
        r#"id: {PARTNER}
name: Acme MSP
psa: connectwise
platform: {{ url: "https://eu2-cloud.acronis.com" }}
provisioning: {{ auto_create: true }}
products:
  - {{ item: workstations, product: ACR-WS }}
  - {{ item: mailboxes, product: ACR-O365, free: true }}
  - {{ item: storage, location: Cloud storage, product: ACR-STOR, default: true }}
{extra}"#
    )
}

fn companies_section(rows: &[(&str, &str)]) -> String {
    let mut s = "companies:\n".to_owned();
    for (company, tenant) in rows {
        s.push_str(&format!("  - {{ company: {company}, tenant: {tenant} }}\n"));
    }
    s
}

fn invalid(err: &OpError) -> String {
    assert!(matches!(err, OpError::Invalid { .. }), "{err}");
    err.to_string()
}

// R-SET-1 R-CO-1 R-REL-2
#[tokio::test]
async fn r_set_1_a_partner_file_applied_twice_changes_nothing_the_second_time() {
    let w = World::bare(PsaKind::Connectwise);
    let c = w.psa.add_company("Contoso");
    let file = partner_file(&companies_section(&[("Contoso", "new")]));

    let first = partners::apply(&w.store, &w.connector, &file)
        .await
        .expect("applies");
    assert!(first.settings_changed);
    assert_eq!(first.companies_changed, vec![c.clone()]);
    let p = w.partner().await;
    assert_eq!(
        p.partner_tenant_id, PARTNER_TENANT,
        "from the platform log-in"
    );
    assert_eq!(p.mapping.default_storage.as_deref(), Some(INFRA));
    assert_eq!(
        w.store.record(PARTNER, &c).map(|r| r.mapping),
        Some(Mapping::NewTenant)
    );

    let before = w.store.state();
    let second = partners::apply(&w.store, &w.connector, &file)
        .await
        .expect("applies again");
    assert!(!second.settings_changed);
    assert!(second.companies_changed.is_empty());
    assert_eq!(w.store.state(), before);
}

// R-SET-1 R-MAP-5 R-CO-3 R-CO-5
#[tokio::test]
async fn r_map_5_an_invalid_partner_file_writes_nothing() {
    let w = World::bare(PsaKind::Connectwise);
    w.psa.add_company("Contoso");
    w.psa.add_company("Beta");
    let self_service = w.platform.add_customer("Self Service", None);
    w.platform
        .edit_tenant(&self_service, |t| t.self_service = true);
    let shared = w.platform.add_customer("Shared", None);
    let rows = [
        (
            partner_file("").replace("ACR-WS", "ACR-NOPE"),
            r#"product "ACR-NOPE" does not exist"#,
        ),
        (
            partner_file(&companies_section(&[("Contoso", &self_service)])),
            "self-service",
        ),
        (
            partner_file(&companies_section(&[("Nobody", "new")])),
            r#""Nobody" does not exist in the PSA"#,
        ),
        (
            partner_file(&companies_section(&[
                ("Contoso", &shared),
                ("Beta", &shared),
            ])),
            "R-CO-5",
        ),
        (
            partner_file("switches: { provisionning: true }\n"),
            "provisionning",
        ),
    ];
    for (file, want) in rows {
        let err = partners::apply(&w.store, &w.connector, &file)
            .await
            .expect_err(want);
        let msg = invalid(&err);
        assert!(msg.contains(want), "{want}: {msg}");
        assert_eq!(
            w.store.state(),
            StoreState::default(),
            "{want}: nothing stored"
        );
    }
}

// R-TWO-1 R-REL-2
#[tokio::test]
async fn r_two_1_a_service_the_file_asks_for_is_created_once_with_the_two_way_defaults() {
    let w = World::bare(PsaKind::Autotask);
    let file = partner_file(
        "switches: { two_way_sync: true }\n\
         two_way: { allocation_code: Cloud services, period_type: quarterly }\n",
    )
    .replace("psa: connectwise", "psa: autotask")
    .replace(
        "  - { item: mailboxes, product: ACR-O365, free: true }\n",
        "  - { item: vms, product: ACR-VM, create: true }\n",
    );
    for _ in 0..2 {
        partners::apply(&w.store, &w.connector, &file)
            .await
            .expect("applies");
    }
    let created = w.psa.state().created;
    assert_eq!(created.len(), 1, "{created:?}");
    let (product, defaults) = &created[0];
    assert_eq!(product.identifier, "ACR-VM");
    assert_eq!(defaults.allocation_code, Some(w.products.code.clone()));
    assert_eq!(defaults.period_type, PeriodType::Quarterly);
    let p = w.partner().await;
    let vms = p.mapping.items.iter().find(|m| m.item == item("vms"));
    assert_eq!(vms.and_then(|m| m.product.clone()), Some(product.clone()));
}

// R-CO-3
#[tokio::test]
async fn r_co_3_a_self_service_tenant_or_one_without_support_access_is_refused() {
    let w = World::new(PsaKind::Connectwise).await;
    let c = w.psa.add_company("Self Co");
    type Lock = fn(&mut domain::model::Tenant);
    let rows: [(&str, Lock, &str); 2] = [
        ("self-service", |t| t.self_service = true, "self-service"),
        (
            "support access off",
            |t| t.support_access = false,
            "support access disabled",
        ),
    ];
    for (case, lock, want) in rows {
        let t = w.platform.add_customer(case, None);
        w.platform.edit_tenant(&t, lock);
        let err = companies::map(
            &w.store,
            &w.connector,
            PARTNER,
            "SelfCo",
            &MappingRequest::Existing(t),
        )
        .await
        .expect_err(case);
        let msg = invalid(&err);
        assert!(
            msg.contains(want) && msg.contains("R-CO-3"),
            "{case}: {msg}"
        );
        assert_eq!(w.store.record(PARTNER, &c), None, "{case}: nothing written");
    }
}

// R-CO-5 R-CO-1
#[tokio::test]
async fn r_co_5_a_tenant_another_company_holds_is_refused_until_it_is_unmapped() {
    let w = World::new(PsaKind::Connectwise).await;
    let alpha = w.psa.add_company("Alpha");
    let beta = w.psa.add_company("Beta");
    let t = w.platform.add_customer("Shared", None);
    let map = |company: &'static str, req: MappingRequest| {
        let w = &w;
        async move { companies::map(&w.store, &w.connector, PARTNER, company, &req).await }
    };
    let rec = map("Alpha", MappingRequest::Existing(t.clone()))
        .await
        .expect("maps")
        .expect("written");
    assert_eq!(rec.mapping, Mapping::Tenant(t.clone()));

    let err = map("Beta", MappingRequest::Existing(t.clone()))
        .await
        .expect_err("held");
    let msg = invalid(&err);
    assert!(
        msg.contains(&format!("already mapped to company {alpha}")),
        "{msg}"
    );
    assert_eq!(w.store.record(PARTNER, &beta), None);
    assert_eq!(
        w.store.tenant_holder(PARTNER, &t).await.unwrap(),
        Some(alpha.clone())
    );

    // The holder's own mapping again changes nothing.
    assert_eq!(
        map("Alpha", MappingRequest::Existing(t.clone()))
            .await
            .unwrap(),
        None
    );
    // Unmapped, the tenant is free for another company (R-CO-1).
    map("Alpha", MappingRequest::Remove).await.expect("unmaps");
    let rec = map("Beta", MappingRequest::Existing(t.clone()))
        .await
        .expect("maps")
        .expect("written");
    assert_eq!(rec.tenant_id(), Some(t.as_str()));
}

// R-STAT-1 R-CO-4
#[tokio::test]
async fn r_stat_1_status_counts_the_mappings_and_names_the_failing_companies() {
    let err = status::status(&World::bare(PsaKind::Connectwise).store, PARTNER)
        .await
        .expect_err("no partner");
    assert!(matches!(err, OpError::UnknownPartner(_)), "{err}");

    let w = World::new(PsaKind::Connectwise).await;
    let (good, ga) = w.customer("Good Co");
    w.psa.put_line(&ga, &w.products.ws.id, 0.0, None);
    let bad = w.psa.add_company("Bad Co");
    let t = w.platform.add_customer("Bad Co", None);
    w.psa.add_company("Later Co");
    companies::map(
        &w.store,
        &w.connector,
        PARTNER,
        "BadCo",
        &MappingRequest::Existing(t.clone()),
    )
    .await
    .expect("maps");
    companies::map(
        &w.store,
        &w.connector,
        PARTNER,
        "LaterCo",
        &MappingRequest::New,
    )
    .await
    .expect("maps");
    let before = status::status(&w.store, PARTNER).await.expect("status");
    assert_eq!(
        (before.companies_mapped, before.companies_to_create),
        (1, 1)
    );
    assert_eq!(before.status.last_sync, None);
    assert_eq!(before.mapping_usable, Ok(()));

    // The tenant is switched to self-service after it was mapped (R-CO-3).
    w.platform.edit_tenant(&t, |t| t.self_service = true);
    let r = w.sync(Scope::Full).await;
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    let st = status::status(&w.store, PARTNER).await.expect("status");
    assert_eq!((st.companies_mapped, st.companies_to_create), (3, 0));
    assert_eq!(st.failing.len(), 1, "{:?}", st.failing);
    assert_eq!(st.failing[0].0, bad);
    assert!(
        st.failing[0].1.contains("self-service"),
        "{}",
        st.failing[0].1
    );
    let last = st.status.last_sync.expect("the run");
    assert_eq!((last.companies, last.failed), (3, 1));
    assert!(st.status.credentials.is_some_and(|c| c.ok));
    assert!(w.tenant_of(&good).is_some());
}
