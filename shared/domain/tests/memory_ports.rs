//! The in-memory ports keep the semantics of the adapters they stand for; the service tests
//! rely on it.

use chrono::Duration;
use domain::model::{CompanyRecord, Mapping, PsaKind, Quota};
use domain::ports::{
    AgreementQuery, CompanyQuery, CompanyStore, ContractWriter, Leases, NewTenant, PartnerStore,
    PsaDirectory, QuotaSet, TenantAdmin, TenantDirectory,
};
use domain::testing::*;
use domain::{PortError, System};

fn is_conflict<T: std::fmt::Debug>(r: Result<T, PortError>) -> String {
    match r {
        Err(e @ PortError::Conflict { .. }) => e.to_string(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn record(company: &str, mapping: Mapping) -> CompanyRecord {
    CompanyRecord::new(company, company, mapping)
}

/// Writes a record that must be accepted.
async fn put(w: &World, r: &CompanyRecord) -> CompanyRecord {
    w.store.put_company(PARTNER, r).await.expect("written")
}

fn tenant(t: &str) -> Mapping {
    Mapping::Tenant(t.into())
}

// R-REL-4
#[tokio::test]
async fn store_writes_are_versioned_and_a_stale_version_conflicts() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = w.partner().await;
    assert_eq!(p.version, 1);
    let stale = domain::model::Partner {
        version: 0,
        ..p.clone()
    };
    is_conflict(w.store.put_partner(&stale).await);
    assert_eq!(w.store.put_partner(&p).await.unwrap().version, 2);

    let s = &w.store;
    let r1 = s
        .put_company(PARTNER, &record("c1", Mapping::Unmapped))
        .await
        .unwrap();
    assert_eq!(r1.version, 1);
    is_conflict(
        s.put_company(PARTNER, &record("c1", Mapping::NewTenant))
            .await,
    );
    let renamed = CompanyRecord {
        name: "C One".into(),
        ..r1.clone()
    };
    assert_eq!(s.put_company(PARTNER, &renamed).await.unwrap().version, 2);
    let msg = is_conflict(s.put_company(PARTNER, &r1).await);
    assert!(msg.contains("expected version 1"), "{msg}");
}

// R-CO-5
#[tokio::test]
async fn store_keeps_a_tenant_with_one_company() {
    let w = World::new(PsaKind::Connectwise).await;
    let s = &w.store;
    let a = put(&w, &record("a", tenant("t1"))).await;
    let msg = is_conflict(s.put_company(PARTNER, &record("b", tenant("t1"))).await);
    assert!(msg.contains("R-CO-5"), "{msg}");
    assert_eq!(s.record(PARTNER, "b"), None, "nothing written");
    assert_eq!(
        s.tenant_holder(PARTNER, "t1").await.unwrap(),
        Some("a".into())
    );
    // The holder moves to another tenant: t1 is free.
    let mut moved = a.clone();
    moved.map_to(tenant("t2"));
    put(&w, &moved).await;
    assert_eq!(s.tenant_holder(PARTNER, "t1").await.unwrap(), None);
    put(&w, &record("b", tenant("t1"))).await;
    let by_tenant = s
        .companies_by_tenant(PARTNER, &["t1".into(), "t2".into()])
        .await
        .unwrap();
    let ids: Vec<&str> = by_tenant.iter().map(|r| r.company_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b"]);
}

#[tokio::test]
async fn store_refuses_to_replace_a_record_that_is_no_longer_stored() {
    let w = World::new(PsaKind::Connectwise).await;
    let s = &w.store;
    let v1 = put(&w, &record("c", tenant("t1"))).await;
    let next = CompanyRecord {
        last_error: Some("x".into()),
        ..v1.clone()
    };
    let v2 = s
        .put_company_replacing(PARTNER, &next, Some(&v1))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // The caller's `previous` is the v1 it read: gone.
    is_conflict(s.put_company_replacing(PARTNER, &next, Some(&v1)).await);
    // A `previous` at the stored version but not what is stored.
    let forged = CompanyRecord {
        name: "forged".into(),
        ..v2.clone()
    };
    is_conflict(s.put_company_replacing(PARTNER, &v2, Some(&forged)).await);
    // "There was none" while there is one.
    is_conflict(
        s.put_company_replacing(PARTNER, &record("c", Mapping::Unmapped), None)
            .await,
    );
    assert_eq!(s.record(PARTNER, "c"), Some(v2));
}

#[tokio::test]
async fn store_lists_the_records_due_on_a_day() {
    let w = World::new(PsaKind::Connectwise).await;
    let s = &w.store;
    let rows = [
        ("error", Some("failed"), Mapping::Unmapped, None, true),
        ("new tenant", None, Mapping::NewTenant, None, true),
        ("review today", None, tenant("t1"), Some("2026-11-22"), true),
        (
            "review tomorrow",
            None,
            tenant("t2"),
            Some("2026-11-23"),
            false,
        ),
        ("nothing", None, tenant("t3"), None, false),
    ];
    for (id, error, mapping, review, _) in &rows {
        let mut r = record(id, mapping.clone());
        r.last_error = error.map(str::to_owned);
        r.next_review = review.map(day);
        put(&w, &r).await;
    }
    let due: Vec<String> = s
        .companies_due(PARTNER, day("2026-11-22"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.company_id)
        .collect();
    for (id, _, _, _, want) in rows {
        assert_eq!(due.contains(&id.to_owned()), want, "{id}");
    }
}

// R-REL-4
#[tokio::test]
async fn r_rel_4_leases_serialise_owners_expire_on_the_clock_and_fence_with_growing_tokens() {
    let w = World::new(PsaKind::Connectwise).await;
    let s = &w.store;
    let t1 = s
        .lease(PARTNER, "k", "run-1", 300)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(s.lease(PARTNER, "k", "run-2", 300).await.unwrap(), None);
    assert!(
        s.renew(PARTNER, "k", "run-1", t1, 300).await.unwrap(),
        "the holder renews"
    );
    assert!(
        !s.renew(PARTNER, "k", "run-2", t1, 300).await.unwrap(),
        "not another owner"
    );
    s.release(PARTNER, "k", "run-2").await.unwrap();
    assert_eq!(
        s.lease(PARTNER, "k", "run-2", 300).await.unwrap(),
        None,
        "not released by another"
    );
    w.advance(Duration::seconds(301));
    let t2 = s
        .lease(PARTNER, "k", "run-2", 300)
        .await
        .unwrap()
        .expect("expired");
    assert!(t2 > t1, "a later holder's token is greater");
    assert!(
        !s.renew(PARTNER, "k", "run-1", t1, 300).await.unwrap(),
        "the lost lease cannot be renewed"
    );
    s.release(PARTNER, "k", "run-2").await.unwrap();
    let t3 = s
        .lease(PARTNER, "k", "run-3", 300)
        .await
        .unwrap()
        .expect("released");
    assert!(t3 > t2, "the token outlives a release");
}

// R-REL-4
#[tokio::test]
async fn r_rel_4_a_note_written_again_survives_the_handling_of_the_older_one() {
    let w = World::new(PsaKind::Connectwise).await;
    let s = &w.store;
    s.wait_for_run(PARTNER, "7").await.unwrap();
    s.wait_for_run(PARTNER, "8").await.unwrap();
    let seen = s.waiting(PARTNER).await.unwrap();
    assert_eq!(seen.len(), 2);
    s.wait_for_run(PARTNER, "7").await.unwrap();
    s.done_waiting(PARTNER, &seen).await.unwrap();
    let left: Vec<String> = s
        .waiting(PARTNER)
        .await
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(left, vec!["7".to_owned()]);
}

// R-PROV-8
#[tokio::test]
async fn psa_listings_filter_by_change_time_and_a_line_change_stamps_its_agreement() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c1, a1) = w.customer("One");
    let (c2, _) = w.customer("Two");
    let since = w.now();
    w.advance(Duration::minutes(1));
    w.psa.put_line(&a1, &w.products.ws.id, 0.0, None);
    w.psa.edit_company(&c2, |c| c.name = "Two Ltd".into());
    let changed = |q: CompanyQuery| {
        let psa = w.psa.clone();
        async move { psa.companies(&q).await.unwrap() }
    };
    let q = CompanyQuery {
        changed_since: Some(since),
        ids: vec![],
    };
    let ids: Vec<String> = changed(q).await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![c2.clone()]);
    let q = CompanyQuery {
        changed_since: None,
        ids: vec![c1.clone()],
    };
    assert_eq!(changed(q).await.len(), 1);
    let agreements = w
        .psa
        .agreements(&AgreementQuery {
            changed_since: Some(since),
            company_ids: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        agreements.iter().map(|a| &a.id).collect::<Vec<_>>(),
        vec![&a1]
    );
}

// R-TWO-1
#[tokio::test]
async fn psa_line_quantities_are_absolute_and_checked_against_what_was_read() {
    let w = World::new(PsaKind::Autotask).await;
    let (_, k) = w.customer("Contract Co");
    let psa = &w.psa;
    let l = psa.add_line(&k, &w.products.srv.id).await.unwrap();
    psa.set_line_quantity(&k, &l, None, 3.0).await.unwrap();
    psa.set_line_quantity(&k, &l, None, 3.0).await.unwrap();
    assert_eq!(psa.quantities(&k), vec![(w.products.srv.id.clone(), 3.0)]);
    // Changed in the PSA since it was read (2): left alone.
    let msg = is_conflict(psa.set_line_quantity(&k, &l, Some(2.0), 5.0).await);
    assert!(msg.contains("changed in the PSA"), "{msg}");
    // Already at the target: nothing to check.
    psa.set_line_quantity(&k, &l, Some(2.0), 3.0).await.unwrap();
    psa.set_line_quantity(&k, &l, Some(3.0), 0.0).await.unwrap();
    assert_eq!(psa.quantities(&k), vec![(w.products.srv.id.clone(), 0.0)]);
    let missing = psa.add_line(&k, "p-none").await;
    assert!(
        matches!(missing, Err(PortError::NotFound { .. })),
        "{missing:?}"
    );
    let missing = psa.set_line_quantity(&k, "l-none", None, 1.0).await;
    assert!(
        matches!(missing, Err(PortError::NotFound { .. })),
        "{missing:?}"
    );
}

fn new_tenant(name: &str, customer_id: &str) -> NewTenant {
    NewTenant {
        name: name.into(),
        customer_id: customer_id.into(),
    }
}

// R-CO-7 R-PROV-11
#[tokio::test]
async fn platform_refuses_a_duplicate_name_and_finds_a_tenant_by_its_company_id() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = &w.platform;
    let t = p
        .create_customer(&new_tenant("Contoso", "c-1"))
        .await
        .unwrap();
    assert!(
        p.state().two_factor.is_empty(),
        "a create is only the tenant"
    );
    p.enable_two_factor(&t.id).await.unwrap();
    p.enable_two_factor(&t.id).await.unwrap();
    assert_eq!(
        p.state().two_factor.into_iter().collect::<Vec<_>>(),
        vec![t.id.clone()]
    );
    let msg = is_conflict(p.create_customer(&new_tenant("contoso ", "c-2")).await);
    assert!(msg.contains("already exists"), "{msg}");
    let found = p.find_customer("c-1").await.unwrap().expect("stamped");
    assert_eq!(found.tenant.id, t.id);
    assert!(found.items.iter().all(|i| !i.enabled), "new items are off");
    p.delete_tenant(&t.id).await.unwrap();
    p.delete_tenant(&t.id).await.unwrap();
    assert_eq!(p.find_customer("c-1").await.unwrap(), None);
    p.create_customer(&new_tenant("Contoso", "c-1"))
        .await
        .expect("the name is free again");
}

// R-PROV-6
#[tokio::test]
async fn platform_quotas_are_set_whole_and_their_changes_follow_the_cursor() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = &w.platform;
    let t = p.add_customer("Cursor Co", Some("c-9"));
    let (_, cursor) = p.items_changed(None).await.unwrap();
    let set = |key, quota| QuotaSet {
        item: key,
        enabled: true,
        quota,
    };
    let before = p.state();
    let bad = p
        .set_quotas(
            &t,
            &[
                set(item("servers"), Quota::hard(1.0)),
                set(item("drives"), Quota::ZERO),
            ],
            &[],
        )
        .await;
    assert!(matches!(bad, Err(PortError::Rejected { .. })), "{bad:?}");
    assert_eq!(p.state(), before, "an item the tenant lacks: nothing set");

    w.advance(Duration::minutes(1));
    let at = p
        .set_quotas(&t, &[set(item("servers"), Quota::hard(2.0))], &[])
        .await
        .unwrap();
    assert_eq!(at, Some(w.now()));
    let (changed, next) = p.items_changed(Some(&cursor)).await.unwrap();
    assert_eq!(changed, vec![(t.clone(), w.now())]);
    let (changed, _) = p.items_changed(Some(&next)).await.unwrap();
    assert!(changed.is_empty());
    let (customers, _) = p.customers(&[]).await.unwrap();
    assert_eq!(customers.len(), 1);
}

#[tokio::test]
async fn faults_fail_the_next_calls_of_a_method_for_a_subject_or_after_the_write() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = &w.platform;
    let (a, b) = (p.add_customer("A", None), p.add_customer("B", None));
    let set = [QuotaSet {
        item: item("servers"),
        enabled: true,
        quota: Quota::hard(1.0),
    }];
    p.faults()
        .fail_for("set_quotas", &b, 1, transient(System::Platform))
        .lose_answer("set_enabled", None, 1, transient(System::Platform));
    p.set_quotas(&a, &set, &[]).await.expect("another subject");
    assert!(p
        .set_quotas(&b, &set, &[])
        .await
        .unwrap_err()
        .is_retryable());
    assert!(
        !p.item(&b, &item("servers")).unwrap().enabled,
        "failed before: unchanged"
    );
    p.set_quotas(&b, &set, &[]).await.expect("spent");
    assert!(p.set_enabled(&a, false).await.is_err());
    assert!(!p.tenant(&a).unwrap().tenant.enabled, "the write happened");
    assert!(p.faults().pending().is_empty());
    assert_eq!(p.faults().calls("set_quotas"), 3);

    // A connection counts its own requests.
    let clients = w.connector.clients(&w.partner().await);
    clients.platform.customers(&[]).await.unwrap();
    clients.psa.products().await.unwrap();
    clients.psa.products().await.unwrap();
    assert_eq!((clients.counters)(), (2, 1));
    assert!(clients.contracts.is_none(), "ConnectWise is synced one way");
}
