//! The sync service (`services::sync::run`, `sync_partner`) over the in-memory ports. Every test
//! asserts on the plan and on what the store, the PSA and the platform hold afterwards.

use chrono::{Duration, NaiveDate};
use domain::model::{CompanyRecord, ItemKey, Mapping, PricingMode, PsaKind, Quota};
use domain::plan::Change;
use domain::ports::{CompanyStore, Leases};
use domain::services::sync::{
    Scope, SyncOptions, SyncReport, DETAIL_CREDENTIALS_FAILED, DETAIL_SYNC_COMPLETED,
};
use domain::testing::*;
use domain::System;

const GIB: f64 = 1_073_741_824.0;

fn prepaid_until() -> Option<NaiveDate> {
    Some(day("2027-06-30"))
}

/// (enabled, quota) of a tenant's item.
fn quota(w: &World, tenant: &str, key: &ItemKey) -> (bool, Quota) {
    let i = w.platform.item(tenant, key).expect("the tenant offers it");
    (i.enabled, i.quota)
}

fn tenant_id(w: &World, company: &str) -> String {
    w.tenant_of(company)
        .expect("the company has a tenant")
        .tenant
        .id
}

fn no_failures(r: &SyncReport) {
    assert!(r.failures.is_empty(), "failures: {:?}", r.failures);
    assert_eq!(r.blocked, None);
}

/// R-PROV-8: an incremental pass read the `changed` companies and its line refresh slice.
fn read_changed(r: &SyncReport, changed: &[&str]) {
    assert_eq!(r.scope, "incremental");
    let mut read: std::collections::BTreeSet<String> =
        changed.iter().map(|c| (*c).to_owned()).collect();
    read.extend(
        r.line_refresh
            .iter()
            .flat_map(|l| l.companies.iter().cloned()),
    );
    assert_eq!(r.companies, read.len(), "{:?}", r.line_refresh);
}

/// The quota changes the plan holds for a company's item: (old, new, rule).
fn quota_changes<'a>(
    r: &'a SyncReport,
    company: &str,
    key: &ItemKey,
) -> Vec<(Option<Quota>, Quota, &'a str)> {
    let of_item = |c: &'a Change| match c {
        Change::SetQuota {
            item,
            old,
            new,
            rule,
            ..
        } if item == key => Some((*old, *new, *rule)),
        _ => None,
    };
    r.plan
        .changes
        .iter()
        .filter(|c| c.company_id() == company)
        .filter_map(of_item)
        .collect()
}

/// A line to put: (product id, quantity, cancelled date).
type LineSpec<'a> = (&'a str, f64, Option<NaiveDate>);

fn put_lines(w: &World, agreement: &str, lines: &[LineSpec]) {
    for (product, quantity, cancelled) in lines {
        w.psa.put_line(agreement, product, *quantity, *cancelled);
    }
}

/// One synced company holding `lines`; returns (company, agreement, tenant).
async fn synced(w: &World, name: &str, lines: &[LineSpec<'_>]) -> (String, String, String) {
    let (c, a) = w.customer(name);
    put_lines(w, &a, lines);
    no_failures(&w.sync(Scope::Full).await);
    let t = tenant_id(w, &c);
    (c, a, t)
}

/// A person changes a tenant's item on the platform; the incremental pass runs 10 minutes later.
async fn by_hand(w: &World, tenant: &str, key: &ItemKey, enabled: bool, q: Quota) -> SyncReport {
    w.advance(Duration::minutes(5));
    w.platform.set_item_by_hand(tenant, key, enabled, q);
    w.advance(Duration::minutes(10));
    let r = w.sync(Scope::Incremental).await;
    no_failures(&r);
    r
}

/// One company per entry of `lines`, each with a PAYG workstation line besides those, synced
/// by one full pass: the report and the companies' (id, tenant), in order.
async fn one_company_each(
    w: &World,
    lines: &[&[LineSpec<'_>]],
) -> (SyncReport, Vec<(String, String)>) {
    let mut companies = Vec::new();
    for (i, ls) in lines.iter().enumerate() {
        let (c, a) = w.customer(&format!("Company {i}"));
        w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
        put_lines(w, &a, ls);
        companies.push(c);
    }
    let r = w.sync(Scope::Full).await;
    no_failures(&r);
    let companies = companies
        .into_iter()
        .map(|c| {
            let t = tenant_id(w, &c);
            (c, t)
        })
        .collect();
    (r, companies)
}

// R-PROV-1 R-REL-2
#[tokio::test]
async fn r_prov_1_a_company_with_an_active_line_gets_a_tenant_and_the_mapping_is_recorded() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, a) = w.customer("Contoso");
    w.psa
        .set_primary_contact(&c, "Ada", "Lovelace", "ada@contoso.example");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    let (prospect, _) = w.customer("Prospect"); // an agreement without lines

    let r = w.sync(Scope::Full).await;
    no_failures(&r);
    assert_eq!(r.scope, "full");
    assert!(
        r.plan.changes.iter().any(|ch| matches!(ch,
            Change::CreateTenant { company_id, tenant_name, rule: "R-PROV-1", .. }
                if *company_id == c && tenant_name == "Contoso")),
        "{:?}",
        r.plan.changes
    );
    let t = w.tenant_of(&c).expect("a tenant");
    assert_eq!(t.tenant.name, "Contoso");
    let rec = w
        .store
        .record(PARTNER, &c)
        .expect("the mapping is recorded");
    assert_eq!(rec.mapping, Mapping::Tenant(t.tenant.id.clone()));
    assert_eq!(
        (rec.last_sync, rec.last_error.clone()),
        (Some(w.now()), None)
    );
    let invited: Vec<String> = w
        .platform
        .state()
        .invitations
        .into_iter()
        .map(|(tid, admin)| format!("{tid} {}", admin.email.unwrap_or_default()))
        .collect();
    assert_eq!(
        invited,
        vec![format!("{} ada@contoso.example", t.tenant.id)]
    );
    assert!(
        w.tenant_of(&prospect).is_none(),
        "no active line, no tenant"
    );
    assert!(w.store.record(PARTNER, &prospect).is_none());

    // R-REL-2: the same input again changes nothing, not even the record.
    w.advance(Duration::minutes(5));
    let again = w.sync(Scope::Full).await;
    assert_eq!(again.plan.changes, vec![]);
    assert_eq!(w.store.record(PARTNER, &c), Some(rec));
    assert_eq!(w.platform.state().tenants.len(), 1);
}

// R-PROV-4 R-PROV-2
#[tokio::test]
async fn r_prov_4_quotas_follow_payg_prepaid_and_mixed_lines() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = w.products.clone();
    let today = Some(day("2026-11-22"));
    let servers = item("servers");
    // (case, lines besides a PAYG workstation line, item, Some(quota) when enabled)
    type Row<'a> = (&'a str, Vec<LineSpec<'a>>, ItemKey, Option<Quota>);
    let rows: [Row; 6] = [
        (
            "PAYG only: unlimited",
            vec![(&p.srv.id, 0.0, None)],
            servers.clone(),
            Some(Quota::UNLIMITED),
        ),
        (
            "prepaid only: hard quota of the sum",
            vec![
                (&p.srv.id, 3.0, prepaid_until()),
                (&p.srv.id, 2.0, prepaid_until()),
            ],
            servers.clone(),
            Some(Quota::hard(5.0)),
        ),
        (
            "prepaid and PAYG: soft quota, unlimited overage",
            vec![(&p.srv.id, 4.0, prepaid_until()), (&p.srv.id, 0.0, None)],
            servers.clone(),
            Some(Quota::soft(4.0)),
        ),
        ("no line, not free: off", vec![], servers.clone(), None),
        (
            "cancelled today: off (R-PROV-2)",
            vec![(&p.srv.id, 3.0, today)],
            servers.clone(),
            None,
        ),
        (
            "no line, free: unlimited",
            vec![],
            item("mailboxes"),
            Some(Quota::UNLIMITED),
        ),
    ];
    let lines: Vec<&[LineSpec]> = rows.iter().map(|r| r.1.as_slice()).collect();
    let (r, companies) = one_company_each(&w, &lines).await;
    for ((c, t), (case, _, key, want)) in companies.iter().zip(&rows) {
        let (enabled, q) = quota(&w, t, key);
        match want {
            Some(want) => {
                assert_eq!((enabled, q), (true, *want), "{case}");
                let rules: Vec<&str> = quota_changes(&r, c, key).iter().map(|x| x.2).collect();
                assert_eq!(rules, vec!["R-PROV-4"], "{case}");
            }
            None => assert!(!enabled, "{case}: {q}"),
        }
    }
}

// R-PROV-5
#[tokio::test]
async fn r_prov_5_default_storage_follows_its_lines_and_another_storage_is_never_free() {
    let w = World::new(PsaKind::Connectwise).await;
    let p = w.products.clone();
    // (case, lines besides a PAYG workstation line, default storage, second storage on)
    type Row<'a> = (&'a str, Vec<LineSpec<'a>>, (bool, Quota), bool);
    let rows: [Row; 4] = [
        (
            "prepaid 100 GB",
            vec![(&p.stor.id, 100.0, prepaid_until())],
            (true, Quota::hard(100.0 * GIB)),
            false,
        ),
        (
            "PAYG",
            vec![(&p.stor.id, 0.0, None)],
            (true, Quota::UNLIMITED),
            false,
        ),
        // No storage line at all: the default storage is assigned (its R-PROV-4 quota: 0).
        ("no storage line", vec![], (true, Quota::ZERO), false),
        // A line of the other storage only: the default one is not assigned.
        (
            "other storage prepaid 50 GB",
            vec![(&p.stor2.id, 50.0, prepaid_until())],
            (false, Quota::UNLIMITED),
            true,
        ),
    ];
    let lines: Vec<&[LineSpec]> = rows.iter().map(|r| r.1.as_slice()).collect();
    let (_, companies) = one_company_each(&w, &lines).await;
    for ((_, t), (case, _, want, other_on)) in companies.iter().zip(&rows) {
        let t = t.as_str();
        assert_eq!(quota(&w, t, &storage(INFRA)), *want, "{case}");
        // The second storage is mapped free, yet off without a line of its own.
        let (on, q) = quota(&w, t, &storage(INFRA_2));
        assert_eq!(on, *other_on, "{case}: second storage {q}");
        if *other_on {
            assert_eq!(q, Quota::hard(50.0 * GIB), "{case}");
        }
    }
}

// R-PROV-6 R-PROV-8
#[tokio::test]
async fn r_prov_6_a_quota_changed_by_hand_is_set_back_by_the_incremental_pass() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, _, t) = synced(
        &w,
        "Northwind",
        &[(&w.products.srv.id.clone(), 3.0, prepaid_until())],
    )
    .await;
    let r = by_hand(&w, &t, &item("servers"), true, Quota::hard(50.0)).await;
    assert_eq!((r.scope.as_str(), r.companies), ("incremental", 1));
    assert_eq!(
        quota_changes(&r, &c, &item("servers")),
        vec![(Some(Quota::hard(50.0)), Quota::hard(3.0), "R-PROV-4")]
    );
    assert_eq!(quota(&w, &t, &item("servers")), (true, Quota::hard(3.0)));
}

// R-PROV-9
#[tokio::test]
async fn r_prov_9_a_dry_run_plans_every_change_and_writes_nothing() {
    let w = World::new(PsaKind::Connectwise).await;
    let srv = w.products.srv.id.clone();
    let (old, a, _) = synced(&w, "Existing", &[(&srv, 3.0, prepaid_until())]).await;
    w.advance(Duration::minutes(5));
    w.psa.put_line(&a, &srv, 2.0, prepaid_until());
    let (new, na) = w.customer("Newcomer");
    w.psa.put_line(&na, &w.products.ws.id, 0.0, None);
    let (store, psa, platform) = (w.store.state(), w.psa.state(), w.platform.state());
    let events = w.events.published();

    let r = w
        .sync_partner(Scope::Full, true, false)
        .await
        .expect("the dry run runs");
    assert!(r.dry_run);
    assert_eq!(r.applied, 0);
    assert_eq!(
        quota_changes(&r, &old, &item("servers")),
        vec![(Some(Quota::hard(3.0)), Quota::hard(5.0), "R-PROV-4")]
    );
    assert!(r.plan.changes.iter().any(|c| matches!(c,
        Change::CreateTenant { company_id, rule: "R-PROV-1", .. } if *company_id == new)));
    assert_eq!(
        quota_changes(&r, &new, &item("workstations")),
        vec![(None, Quota::UNLIMITED, "R-PROV-4")]
    );
    assert_eq!(w.store.state(), store, "store unchanged");
    assert_eq!(w.platform.state(), platform, "platform unchanged");
    assert_eq!(w.psa.state(), psa, "PSA unchanged");
    assert_eq!(w.events.published(), events, "no event");
}

/// Six companies with a PAYG workstation line each, synced; then every agreement is cancelled
/// (a mistake in the PSA) with deprovisioning's zero quotas on.
async fn everything_cancelled(w: &World) -> Vec<String> {
    let mut tenants = Vec::new();
    let mut agreements = Vec::new();
    for i in 0..6 {
        let (c, a) = w.customer(&format!("Customer {i}"));
        w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
        agreements.push((c, a));
    }
    no_failures(&w.sync(Scope::Full).await);
    for (c, a) in &agreements {
        tenants.push(tenant_id(w, c));
        w.psa.edit_agreement(a, |ag| ag.cancelled = true);
    }
    w.update_partner(|p| p.provisioning.deprovision.zero_quotas = true)
        .await;
    w.advance(Duration::minutes(5));
    tenants
}

// R-PROV-10 R-PROV-7
#[tokio::test]
async fn r_prov_10_the_guard_blocks_a_run_that_would_zero_too_many_quotas_and_force_applies_it() {
    let w = World::new(PsaKind::Connectwise).await;
    let tenants = everything_cancelled(&w).await;
    let (platform, records) = (w.platform.state(), w.store.state().companies);

    let r = w.sync(Scope::Full).await;
    let blocked = r.blocked.clone().expect("the guard trips");
    assert!(blocked.contains("R-PROV-10"), "{blocked}");
    assert_eq!(
        r.plan.zeroed_quotas(),
        12,
        "workstations and mailboxes of six tenants"
    );
    assert_eq!(r.applied, 0);
    assert_eq!(
        w.platform.state(),
        platform,
        "nothing changed on the platform"
    );
    assert_eq!(w.store.state().companies, records, "no record changed");
    let last = w
        .store
        .partner_status(PARTNER)
        .last_sync
        .expect("the run is on the status");
    assert!(last.blocked.is_some_and(|b| b.contains("R-PROV-10")));

    let forced = w
        .run(
            Scope::Full,
            SyncOptions {
                force: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("runs");
    no_failures(&forced);
    for t in &tenants {
        assert_eq!(quota(&w, t, &item("workstations")), (false, Quota::ZERO));
    }
}

// R-MAP-6
#[tokio::test]
async fn r_map_6_an_unusable_mapping_blocks_the_run_and_never_zeroes_quotas() {
    type Unusable = fn(&mut domain::model::Partner);
    let rows: [(&str, Unusable, &str); 2] = [
        (
            "no item has a product or is free",
            |p| {
                for m in &mut p.mapping.items {
                    (m.product, m.free) = (None, false);
                }
            },
            "no offering item",
        ),
        (
            "no default storage",
            |p| p.mapping.default_storage = None,
            "no default storage",
        ),
    ];
    for (case, unusable, why) in rows {
        let w = World::new(PsaKind::Connectwise).await;
        let (_, a, t) = synced(&w, "Mapped Co", &[(&w.products.ws.id.clone(), 0.0, None)]).await;
        w.psa.edit_agreement(&a, |ag| ag.cancelled = true);
        let (new, na) = w.customer("New Co");
        w.psa.put_line(&na, &w.products.ws.id, 0.0, None);
        w.update_partner(unusable).await;
        let (platform, records) = (w.platform.state(), w.store.state().companies);

        let r = w.sync(Scope::Full).await;
        let blocked = r.blocked.clone().unwrap_or_default();
        assert!(
            blocked.contains("R-MAP-6") && blocked.contains(why),
            "{case}: {blocked}"
        );
        assert!(r.plan.changes.is_empty(), "{case}");
        assert_eq!(w.platform.state(), platform, "{case}: platform unchanged");
        assert_eq!(
            w.store.state().companies,
            records,
            "{case}: records unchanged"
        );
        assert_eq!(
            quota(&w, &t, &item("workstations")),
            (true, Quota::UNLIMITED),
            "{case}"
        );
        assert!(w.tenant_of(&new).is_none(), "{case}");
        let last = w
            .store
            .partner_status(PARTNER)
            .last_sync
            .expect("on the status");
        assert!(
            last.blocked.is_some_and(|b| b.contains("R-MAP-6")),
            "{case}"
        );
    }
}

// R-CO-4 R-STAT-1
#[tokio::test]
async fn r_co_4_one_companys_platform_failure_fails_alone_and_is_recorded() {
    let w = World::new(PsaKind::Connectwise).await;
    let (srv, ws) = (w.products.srv.id.clone(), w.products.ws.id.clone());
    let (good, ga, gt) = synced(&w, "Good Co", &[(&ws, 0.0, None)]).await;
    let (bad, ba, bt) = synced(&w, "Bad Co", &[(&ws, 0.0, None)]).await;
    w.advance(Duration::minutes(5));
    w.psa.put_line(&ga, &srv, 2.0, prepaid_until());
    w.psa.put_line(&ba, &srv, 4.0, prepaid_until());
    w.platform
        .faults()
        .fail_for("set_quotas", &bt, 1, transient(System::Platform));

    let r = w.sync(Scope::Full).await;
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert_eq!(r.failures[0].company_id, bad);
    assert!(
        r.failures[0].reason.contains("setting quotas failed"),
        "{}",
        r.failures[0].reason
    );
    assert_eq!(
        quota(&w, &gt, &item("servers")),
        (true, Quota::hard(2.0)),
        "the others apply"
    );
    let rec = w.store.record(PARTNER, &bad).expect("recorded");
    assert!(rec
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("setting quotas failed")));
    assert_eq!(rec.last_sync, Some(w.now()));
    assert_eq!(
        w.store.record(PARTNER, &good).and_then(|r| r.last_error),
        None
    );

    // The failed company is due: the next incremental pass completes it and clears the error.
    w.advance(Duration::minutes(15));
    let r = w.sync(Scope::Incremental).await;
    no_failures(&r);
    read_changed(&r, &[&bad]);
    assert_eq!(quota(&w, &bt, &item("servers")), (true, Quota::hard(4.0)));
    assert_eq!(
        w.store.record(PARTNER, &bad).and_then(|r| r.last_error),
        None
    );
}

// R-PROV-8
#[tokio::test]
async fn an_incremental_pass_reads_only_the_companies_that_changed() {
    let w = World::new(PsaKind::Connectwise).await;
    let ws = w.products.ws.id.clone();
    let mut agreements = Vec::new();
    for name in ["One", "Two", "Three"] {
        let (c, a) = w.customer(name);
        w.psa.put_line(&a, &ws, 0.0, None);
        agreements.push((c, a));
    }
    no_failures(&w.sync(Scope::Full).await);
    w.advance(Duration::minutes(15));
    let quiet = w.sync(Scope::Incremental).await;
    read_changed(&quiet, &[]);
    assert!(quiet.plan.changes.is_empty(), "{:?}", quiet.plan.changes);
    assert_eq!(
        quiet
            .line_refresh
            .as_ref()
            .map(|l| (l.companies.len(), l.mapped)),
        Some((1, 3)),
        "one of the three mapped companies' lines re-read (R-PROV-8)"
    );

    w.advance(Duration::minutes(15));
    let (two, a2) = &agreements[1];
    w.psa.put_line(a2, &w.products.srv.id, 6.0, prepaid_until());
    let r = w.sync(Scope::Incremental).await;
    no_failures(&r);
    read_changed(&r, &[two]);
    assert!(!r.plan.changes.is_empty());
    assert!(
        r.plan.changes.iter().all(|c| c.company_id() == two),
        "{:?}",
        r.plan.changes
    );
    assert_eq!(
        quota(&w, &tenant_id(&w, two), &item("servers")),
        (true, Quota::hard(6.0))
    );
}

// R-SET-4
#[tokio::test]
async fn r_set_4_a_credential_failure_is_on_the_status_and_raises_an_event() {
    type Arm = fn(&World);
    let rows: [(&str, Arm, bool); 3] = [
        (
            "connect: the stored secret is refused",
            |w| {
                w.connector
                    .faults()
                    .fail("connect", 1, credentials(System::Secrets));
            },
            true,
        ),
        (
            "the PSA refuses the keys during the run, and again after they are read afresh",
            |w| {
                w.psa
                    .faults()
                    .fail("companies", 2, credentials(System::Psa));
            },
            true,
        ),
        (
            "the PSA is down: not a credential failure",
            |w| {
                w.psa.faults().fail("companies", 1, transient(System::Psa));
            },
            false,
        ),
    ];
    for (case, arm, credential) in rows {
        let w = World::new(PsaKind::Connectwise).await;
        arm(&w);
        let err = w
            .sync_partner(Scope::Full, false, false)
            .await
            .expect_err(case);
        assert_eq!(err.is_retryable(), !credential, "{case}: {err}");
        let status = w.store.partner_status(PARTNER);
        let failed = w.events.of_type(DETAIL_CREDENTIALS_FAILED);
        assert!(w.events.of_type(DETAIL_SYNC_COMPLETED).is_empty(), "{case}");
        if credential {
            let cs = status.credentials.expect("recorded");
            assert!(!cs.ok, "{case}");
            assert!(
                cs.problem
                    .is_some_and(|p| p.contains("credentials rejected")),
                "{case}"
            );
            assert_eq!(failed.len(), 1, "{case}");
            assert_eq!(failed[0].detail["partner"], PARTNER, "{case}");
        } else {
            assert_eq!(status.credentials, None, "{case}");
            assert!(failed.is_empty(), "{case}");
        }
    }
}

// R-SET-4: keys rotated while a process held them cached — a vendor's rejection makes the run
// read the secrets again (once) and go on; a missing secret or a second rejection does not.
#[tokio::test]
async fn r_set_4_rejected_keys_are_read_again_once_before_the_run_fails() {
    let w = World::new(PsaKind::Connectwise).await;
    w.psa
        .faults()
        .fail("companies", 1, credentials(System::Psa));
    let report = w
        .sync_partner(Scope::Full, false, false)
        .await
        .expect("the keys read afresh work");
    assert_eq!(w.connector.faults().calls("reconnect"), 1);
    assert_eq!(
        w.psa.faults().calls("companies"),
        2,
        "the run went on: {report:?}"
    );
    assert!(report.failures.is_empty(), "{report:?}");
    assert!(w.events.of_type(DETAIL_CREDENTIALS_FAILED).is_empty());
    assert_eq!(w.events.of_type(DETAIL_SYNC_COMPLETED).len(), 1);

    // Refused twice: read afresh once only, then the credential failure.
    let w = World::new(PsaKind::Connectwise).await;
    w.psa
        .faults()
        .fail("companies", 5, credentials(System::Platform));
    w.sync_partner(Scope::Full, false, false)
        .await
        .expect_err("still refused");
    assert_eq!(w.connector.faults().calls("reconnect"), 1);
    assert_eq!(w.events.of_type(DETAIL_CREDENTIALS_FAILED).len(), 1);

    // A missing secret is not read again.
    let w = World::new(PsaKind::Connectwise).await;
    w.connector
        .faults()
        .fail("connect", 1, credentials(System::Secrets));
    w.sync_partner(Scope::Full, false, false)
        .await
        .expect_err("no secret");
    assert_eq!(w.connector.faults().calls("reconnect"), 0);
}

// R-STAT-1
#[tokio::test]
async fn sync_completed_is_published_after_a_run_that_is_not_a_dry_run() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, a) = w.customer("Evented");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    w.sync_partner(Scope::Full, true, false)
        .await
        .expect("dry run");
    assert!(
        w.events.published().is_empty(),
        "a dry run publishes nothing"
    );

    let r = w
        .sync_partner(Scope::Full, false, false)
        .await
        .expect("runs");
    no_failures(&r);
    let done = w.events.of_type(DETAIL_SYNC_COMPLETED);
    assert_eq!(done.len(), 1);
    let d = &done[0].detail;
    assert_eq!(
        (d["partner"].as_str(), d["dry_run"].as_bool()),
        (Some(PARTNER), Some(false))
    );
    assert_eq!(d["applied"].as_u64(), Some(r.applied as u64));
    assert!(d["changes"].as_array().is_some_and(|cs| cs
        .iter()
        .any(|ch| ch["action"] == "create_tenant" && ch["company_id"] == c)));
    assert!(d["platform_requests"].as_u64().is_some_and(|n| n > 0));
    let st = w.store.partner_status(PARTNER);
    assert!(st.credentials.is_some_and(|c| c.ok));
    assert_eq!(st.last_sync.map(|s| s.applied), Some(r.applied));
}

// R-PROV-11
#[tokio::test]
async fn r_prov_11_quotas_owed_to_a_new_tenant_are_completed_by_the_next_pass() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, a) = w.customer("Half Done");
    w.psa.put_line(&a, &w.products.srv.id, 3.0, prepaid_until());
    w.platform
        .faults()
        .fail("set_quotas", 1, transient(System::Platform));
    let r = w.sync(Scope::Full).await;
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    let t = tenant_id(&w, &c);
    let rec = w
        .store
        .record(PARTNER, &c)
        .expect("recorded with its tenant");
    assert_eq!(rec.mapping, Mapping::Tenant(t.clone()));
    assert!(rec.last_error.is_some());

    w.advance(Duration::minutes(15));
    no_failures(&w.sync(Scope::Incremental).await);
    assert_eq!(quota(&w, &t, &item("servers")), (true, Quota::hard(3.0)));
    assert_eq!(w.platform.tenants_of(&c).len(), 1, "never twice");
    assert_eq!(w.store.record(PARTNER, &c).and_then(|r| r.last_error), None);
}

// R-PROV-1
#[tokio::test]
async fn r_prov_1_a_trial_tenant_goes_to_production_after_one_month_on_its_review_day() {
    let w = World::new(PsaKind::Connectwise).await;
    // Full passes seldom enough that only the review date brings the company back.
    w.update_partner(|p| {
        p.provisioning.mode = PricingMode::Trial;
        p.full_sync_hours = 24 * 40;
    })
    .await;
    let (c, _, t) = synced(&w, "Trial Co", &[(&w.products.ws.id.clone(), 0.0, None)]).await;
    assert_eq!(
        w.platform.tenant(&t).and_then(|t| t.tenant.pricing_mode),
        Some("trial".into())
    );
    w.advance(Duration::days(1));
    no_failures(&w.sync(Scope::Full).await);
    let rec = w.store.record(PARTNER, &c).expect("recorded");
    assert_eq!(
        rec.next_review,
        Some(day("2026-12-22")),
        "comes back on its own"
    );

    w.clock
        .set(start_time() + Duration::days(30) + Duration::hours(1));
    let r = w.sync(Scope::Incremental).await;
    no_failures(&r);
    assert_eq!(r.scope, "incremental");
    assert!(r.plan.changes.iter().any(|ch| matches!(
        ch,
        Change::SwitchToProduction {
            rule: "R-PROV-1",
            ..
        }
    )));
    assert_eq!(
        w.platform.tenant(&t).and_then(|t| t.tenant.pricing_mode),
        Some("production".into())
    );
}

// R-TWO-1
#[tokio::test]
async fn r_two_1_a_service_turned_on_or_off_on_the_platform_follows_into_the_contract() {
    let w = World::new(PsaKind::Autotask).await;
    w.update_partner(|p| p.switches.two_way_sync = true).await;
    let (ws, srv) = (w.products.ws.id.clone(), w.products.srv.id.clone());
    let (c, k) = w.customer("Two Way Co"); // a prepaid contract
    w.psa.put_line(&k, &ws, 5.0, None);
    no_failures(&w.sync(Scope::Full).await);
    let t = tenant_id(&w, &c);
    assert_eq!(
        quota(&w, &t, &item("workstations")),
        (true, Quota::hard(5.0))
    );

    // A person turns servers on with 3: the contract gets the service with 3 units.
    let r = by_hand(&w, &t, &item("servers"), true, Quota::hard(3.0)).await;
    assert!(
        r.plan.changes.iter().any(|ch| matches!(ch,
        Change::AddLine { company_id, agreement_id, product, quantity, rule: "R-TWO-1" }
            if *company_id == c && *agreement_id == k && product.id == srv && *quantity == 3.0)),
        "{:?}",
        r.plan.changes
    );
    assert_eq!(
        w.psa.quantities(&k),
        vec![(ws.clone(), 5.0), (srv.clone(), 3.0)]
    );
    assert_eq!(
        quota(&w, &t, &item("servers")),
        (true, Quota::hard(3.0)),
        "kept as set"
    );

    // Workstations turned off: the line goes to 0 and the item is not turned back on.
    let r = by_hand(&w, &t, &item("workstations"), false, Quota::hard(5.0)).await;
    assert!(r.plan.changes.iter().any(|ch| matches!(ch,
        Change::SetLineQuantity { old, new, rule: "R-TWO-1", .. } if *old == 5.0 && *new == 0.0)));
    assert_eq!(w.psa.quantities(&k), vec![(ws, 0.0), (srv, 3.0)]);
    assert!(!quota(&w, &t, &item("workstations")).0);

    // A full pass later changes nothing on either side.
    w.advance(Duration::hours(25));
    let r = w.sync(Scope::Full).await;
    no_failures(&r);
    assert_eq!(r.plan.changes, vec![]);
}
// R-PROV-11 — service bug: see the report. A pass that is not full never looks for a tenant
// stamped with the company's id, so a company whose record write failed after its tenant was
// created gets a second tenant (or a refused create) from a company or incremental pass.
#[tokio::test]
async fn r_prov_11_a_company_pass_adopts_the_tenant_a_lost_record_write_left() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, a) = w.customer("Lost Record");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    w.store
        .faults()
        .fail("put_company_replacing", 1, transient(System::Store));
    let r = w.sync(Scope::Full).await;
    assert!(
        r.failures[0].reason.contains("could not record the sync"),
        "{:?}",
        r.failures
    );
    let t = tenant_id(&w, &c);
    assert!(w.store.record(PARTNER, &c).is_none());

    // The company is renamed in the PSA; its webhook runs a company pass.
    w.advance(Duration::minutes(1));
    w.psa
        .edit_company(&c, |co| co.name = "Lost Record Ltd".into());
    let r = w.sync(Scope::Company(c.clone())).await;
    no_failures(&r);
    assert!(
        r.plan.changes.iter().any(|ch| matches!(ch,
            Change::AdoptTenant { tenant_id, .. } if *tenant_id == t)),
        "{:?}",
        r.plan.changes
    );
    assert_eq!(w.platform.tenants_of(&c).len(), 1, "never twice");
}

// R-CO-5 — service bug: see the report. A full pass adopts a tenant stamped with a company's id
// even when another company holds it: it writes that tenant's quotas from the wrong company's
// lines, then the record write is refused (R-CO-5), at every pass.
#[tokio::test]
async fn r_co_5_a_stamped_tenant_another_company_holds_is_not_adopted() {
    let w = World::new(PsaKind::Connectwise).await;
    let srv = w.products.srv.id.clone();
    let (holder, ha) = w.customer("Holder Co");
    w.psa.put_line(&ha, &srv, 2.0, prepaid_until());
    let (stamped, sa) = w.customer("Stamped Co");
    w.psa.put_line(&sa, &srv, 7.0, prepaid_until());
    // The tenant carries Stamped Co's id but the operator mapped Holder Co to it.
    let t = w.platform.add_customer("Old Stamped Co", Some(&stamped));
    let rec = CompanyRecord::new(&holder, "Holder Co", Mapping::Tenant(t.clone()));
    w.store.put_company(PARTNER, &rec).await.expect("mapped");

    let r = w.sync(Scope::Full).await;
    let touches_t = |ch: &Change| match ch {
        Change::AdoptTenant { tenant_id, .. } => *tenant_id == t,
        Change::SetQuota { tenant_id, .. } => tenant_id.as_deref() == Some(t.as_str()),
        _ => false,
    };
    assert!(
        !r.plan
            .changes
            .iter()
            .any(|ch| ch.company_id() == stamped && touches_t(ch)),
        "{:?}",
        r.plan.changes
    );
    assert_eq!(
        quota(&w, &t, &item("servers")),
        (true, Quota::hard(2.0)),
        "the holder's lines"
    );
}

// R-SET-4 — service bug: see the report. A credential refusal of a company's write fails that
// company only; the run's status says the credentials are fine and no notification is raised.
#[tokio::test]
async fn r_set_4_a_credential_refusal_of_a_write_is_on_the_status() {
    let w = World::new(PsaKind::Connectwise).await;
    let (_, a) = w.customer("Refused Co");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    w.platform
        .faults()
        .fail("create_customer", 1, credentials(System::Platform));
    let r = w
        .sync_partner(Scope::Full, false, false)
        .await
        .expect("the run happens");
    assert!(r.failures[0].reason.contains("credentials rejected"));
    let cs = w
        .store
        .partner_status(PARTNER)
        .credentials
        .expect("checked");
    assert!(!cs.ok, "{cs:?}");
    assert_eq!(w.events.of_type(DETAIL_CREDENTIALS_FAILED).len(), 1);
}

// R-CO-7: two PSA companies with the same name each get a tenant; the second one's name is
// made unique with its PSA identifier, and the plan says which name it falls back to.
#[tokio::test]
async fn r_co_7_two_companies_of_one_name_get_two_tenants() {
    let w = World::new(PsaKind::Connectwise).await;
    let (first, a1) = w.customer("Contoso");
    w.psa.put_line(&a1, &w.products.ws.id, 0.0, None);
    let r = w.sync(Scope::Full).await;
    no_failures(&r);
    w.advance(Duration::minutes(1));
    let (second, a2) = w.customer("Contoso");
    w.psa
        .edit_company(&second, |c| c.identifier = "CONTOSO-2".into());
    w.psa.put_line(&a2, &w.products.ws.id, 0.0, None);
    for scope in [Scope::Incremental, Scope::Company(second.clone())] {
        let r = w.sync(scope).await;
        no_failures(&r);
    }
    assert!(
        r.plan.changes.iter().any(|c| matches!(c,
            Change::CreateTenant { unique_name, .. } if unique_name == "Contoso (Contoso)")),
        "{:?}",
        r.plan.changes
    );
    let t1 = w.tenant_of(&first).expect("first tenant");
    let t2 = w.tenant_of(&second).expect("second tenant");
    assert_eq!(t1.tenant.name, "Contoso");
    assert_eq!(t2.tenant.name, "Contoso (CONTOSO-2)");
    let rec = w.store.record(PARTNER, &second).expect("recorded");
    assert_eq!(rec.tenant_id(), Some(t2.tenant.id.as_str()));
    assert_eq!(rec.last_error, None);
}

// R-REL-4: one run per partner. A company event that finds the partner's lease held is noted
// for the holder (folded) and writes nothing; the next run that holds the lease syncs it.
#[tokio::test]
async fn r_rel_4_a_company_event_during_a_run_is_folded_into_it() {
    let w = World::new(PsaKind::Connectwise).await;
    no_failures(&w.sync(Scope::Full).await);
    let (c, a) = w.customer("Acme");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    let (other, _) = w.customer("Other");
    let holder = w
        .store
        .lease(PARTNER, "run", "the-running-pass", 300)
        .await
        .unwrap();
    assert!(holder.is_some());
    let platform_before = w.platform.state();

    let r = w.sync(Scope::Company(c.clone())).await;
    assert!(
        r.folded.as_deref().is_some_and(|f| f.contains(&c)),
        "{:?}",
        r.folded
    );
    assert_eq!((r.applied, r.blocked.as_deref()), (0, None));
    assert_eq!(w.platform.state(), platform_before, "nothing written");
    let noted: Vec<String> = w
        .store
        .waiting(PARTNER)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(noted, vec![c.clone()]);

    // The holder lets go; the next run of the partner — here another company's event —
    // syncs the noted company too, and its note is gone.
    w.store
        .release(PARTNER, "run", "the-running-pass")
        .await
        .unwrap();
    let r = w.sync(Scope::Company(other.clone())).await;
    no_failures(&r);
    assert!(
        w.tenant_of(&c).is_some(),
        "the folded company got its tenant"
    );
    assert!(w.store.waiting(PARTNER).await.unwrap().is_empty());
}

// R-REL-4: a partner pass that finds another run holding the lease does not start.
#[tokio::test]
async fn r_rel_4_a_partner_pass_during_another_run_does_not_start() {
    let w = World::new(PsaKind::Connectwise).await;
    let (_c, a) = w.customer("Acme");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    w.store
        .lease(PARTNER, "run", "the-running-pass", 300)
        .await
        .unwrap()
        .expect("free");
    let before = (
        w.store.state().companies,
        w.store.state().cursors,
        w.platform.state(),
    );
    let r = w.sync(Scope::Full).await;
    assert!(
        r.blocked
            .as_deref()
            .is_some_and(|b| b.contains("another run")),
        "{:?}",
        r.blocked
    );
    assert_eq!(r.applied, 0);
    let after = (
        w.store.state().companies,
        w.store.state().cursors,
        w.platform.state(),
    );
    assert!(before == after, "nothing written");
    // Once the lease expires (a run that died), the next pass runs.
    w.advance(Duration::seconds(301));
    no_failures(&w.sync(Scope::Full).await);
}

// R-REL-4: a run that cannot renew its lease (lost to another run) applies nothing more and
// leaves the cursor alone.
#[tokio::test]
async fn r_rel_4_a_run_that_lost_its_lease_applies_nothing() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, a) = w.customer("Acme");
    w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    w.store.faults().fail("renew", 1, transient(System::Store));
    let r = w.sync(Scope::Full).await;
    assert!(
        r.blocked
            .as_deref()
            .is_some_and(|b| b.contains("lease was lost")),
        "{:?}",
        r.blocked
    );
    assert!(
        w.tenant_of(&c).is_none(),
        "no tenant created after the loss"
    );
    assert!(
        w.store.state().cursors.is_empty(),
        "the cursor did not move"
    );
    no_failures(&w.sync(Scope::Full).await);
    assert!(w.tenant_of(&c).is_some());
}

// R-REL-4: the cursor is fenced by the run's token: a run's cursor never replaces one written
// by a later run (a greater token).
#[tokio::test]
async fn r_rel_4_a_stale_runs_cursor_never_replaces_a_later_runs() {
    use domain::ports::{SyncCursor, SyncState};
    let w = World::new(PsaKind::Connectwise).await;
    let later = SyncCursor {
        fence: 5,
        last_full: Some(w.now()),
        ..SyncCursor::default()
    };
    w.store.put_cursor(PARTNER, &later).await.unwrap();
    let stale = SyncCursor {
        fence: 3,
        ..SyncCursor::default()
    };
    let e = w.store.put_cursor(PARTNER, &stale).await.unwrap_err();
    assert!(matches!(e, domain::PortError::Conflict { .. }), "{e}");
    assert_eq!(w.store.cursor(PARTNER).await.unwrap(), later);
    // The run's lease token (1) is behind the stored fence (the lease item was lost): the run
    // still moves the cursor, continuing from the fence.
    no_failures(&w.sync(Scope::Full).await);
    let moved = w.store.cursor(PARTNER).await.unwrap();
    assert_eq!(moved.fence, 6);
    assert!(moved.last_full.is_some());
}

// R-REL-4: a quota write is refused when the tenant no longer holds what the run read (a later
// run, or a person, moved it): nothing is written and the company is synced at the next pass.
#[tokio::test]
async fn r_rel_4_a_quota_write_on_a_moved_basis_is_refused() {
    use domain::ports::{QuotaSet, TenantAdmin};
    let w = World::new(PsaKind::Connectwise).await;
    let (c, _a, t) = synced(&w, "Acme", &[(&w.products.ws.id, 0.0, None)]).await;
    let ws = item("workstations");
    let (enabled, read) = quota(&w, &t, &ws);
    let basis = [QuotaSet {
        item: ws.clone(),
        enabled,
        quota: read,
    }];
    // A person sets 3 after the run read the tenant.
    w.platform.set_item_by_hand(&t, &ws, true, Quota::hard(3.0));
    let stale = [QuotaSet {
        item: ws.clone(),
        enabled: true,
        quota: Quota::hard(9.0),
    }];
    let e = w.platform.set_quotas(&t, &stale, &basis).await.unwrap_err();
    assert!(matches!(e, domain::PortError::Conflict { .. }), "{e}");
    assert!(
        e.to_string().contains("changed since this run read it"),
        "{e}"
    );
    assert_eq!(
        quota(&w, &t, &ws),
        (true, Quota::hard(3.0)),
        "not overwritten"
    );
    // The basis as it is now: written.
    let now = [QuotaSet {
        item: ws.clone(),
        enabled: true,
        quota: Quota::hard(3.0),
    }];
    w.platform.set_quotas(&t, &stale, &now).await.unwrap();
    assert_eq!(quota(&w, &t, &ws).1, Quota::hard(9.0));
    let _ = c;
}

// R-PROV-8: a line edited without its agreement's change time moving (a ConnectWise addition
// edit, an Autotask unit adjustment) reaches the platform through the incremental passes'
// rolling line refresh within `line_refresh_hours`; the companies whose lines did not change
// plan nothing, and the change is applied once.
#[tokio::test]
async fn r_prov_8_a_quiet_line_edit_reaches_the_platform_within_the_line_refresh_period() {
    let w = World::new(PsaKind::Connectwise).await;
    w.update_partner(|p| p.line_refresh_hours = 1).await;
    let srv = w.products.srv.id.clone();
    let mut cos = Vec::new();
    for name in ["Quiet One", "Quiet Two", "Quiet Three"] {
        let (c, a) = w.customer(name);
        let line = w.psa.put_line(&a, &srv, 3.0, prepaid_until());
        cos.push((c, a, line));
    }
    no_failures(&w.sync(Scope::Full).await);
    let (c, a, line) = cos[1].clone();
    let t = tenant_id(&w, &c);
    assert_eq!(quota(&w, &t, &item("servers")), (true, Quota::hard(3.0)));
    w.advance(Duration::minutes(15));
    w.psa.edit_line_quietly(&a, &line, |l| l.quantity = 7.0);
    // 1 hour at a pass every 15 minutes: 4 passes; 3 mapped companies: 1 a pass.
    let mut changes = Vec::new();
    for _ in 0..4 {
        w.advance(Duration::minutes(15));
        let r = w.sync(Scope::Incremental).await;
        no_failures(&r);
        let l = r.line_refresh.as_ref().expect("a line refresh slice");
        assert_eq!((l.companies.len(), l.mapped, l.every_hours), (1, 3, 1));
        assert_eq!(l.reason, "line refresh slice (R-PROV-8)");
        changes.extend(
            quota_changes(&r, &c, &item("servers"))
                .into_iter()
                .map(|(old, new, _)| (old, new)),
        );
        assert!(
            r.plan.changes.iter().all(|ch| ch.company_id() == c),
            "the others plan nothing: {:?}",
            r.plan.changes
        );
    }
    assert_eq!(quota(&w, &t, &item("servers")), (true, Quota::hard(7.0)));
    assert_eq!(changes.len(), 1, "applied once: {changes:?}");
}
