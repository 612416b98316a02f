//! The publish service (`services::publish`) over the in-memory ports: what the PSA's lines hold
//! afterwards, the history and the event.

use domain::model::PsaKind;
use domain::ports::{
    Measure, PublishLedger, PublishRecord, PublishResult, PublishTrigger, UsageFigure,
};
use domain::services::publish::{
    publish_now, PublishOptions, PublishPeriod, PublishRequest, DETAIL_FAILED,
    DETAIL_PARTLY_FAILED, DETAIL_PUBLISHED,
};
use domain::services::sync::Scope;
use domain::services::OpError;
use domain::testing::*;
use domain::{PortError, System};

const GIB: f64 = 1_073_741_824.0;

fn line_quantity(w: &World, agreement: &str, line: &str) -> f64 {
    w.psa.state().lines[agreement]
        .iter()
        .find(|l| l.id == line)
        .expect("the line exists")
        .quantity
}

fn figure(item: domain::model::ItemKey, measure: Measure, value: f64) -> UsageFigure {
    UsageFigure {
        item,
        measure,
        value,
    }
}

/// A synced company with a PAYG workstation line and a PAYG storage line: (company, agreement,
/// workstation line, storage line, tenant).
async fn payg_company(w: &World, name: &str) -> (String, String, String, String, String) {
    let c = w.psa.add_company(name);
    // R-PROV-3: an Autotask contract is PAYG by its field.
    let a = w
        .psa
        .add_agreement(&c, (w.psa_kind == PsaKind::Autotask).then_some(true));
    let ws = w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    let st = w.psa.put_line(&a, &w.products.stor.id, 0.0, None);
    let r = w.sync(Scope::Full).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let t = w.tenant_of(&c).expect("a tenant").tenant.id;
    (c, a, ws, st, t)
}

fn manual(companies: &[&str], dry_run: bool) -> PublishRequest {
    PublishRequest {
        partner: PARTNER.into(),
        trigger: PublishTrigger::Manual {
            initiator: "finance@acme.example".into(),
        },
        period: None,
        options: PublishOptions {
            companies: companies.iter().map(|c| c.to_string()).collect(),
            dry_run,
            concurrency: 4,
        },
    }
}

async fn publish(w: &World, req: &PublishRequest) -> Result<PublishRecord, OpError> {
    publish_now(&w.store, &w.events, &w.connector, req, w.now(), "run-1").await
}

#[tokio::test]
async fn r_use_1_r_use_8_r_use_9_a_manual_publish_writes_usage_keeps_history_and_tells() {
    for psa in [PsaKind::Connectwise, PsaKind::Autotask] {
        let w = World::new(psa).await;
        let (c, a, ws, st, t) = payg_company(&w, "Contoso").await;
        w.platform
            .set_usage(&t, figure(item("workstations"), Measure::Standard, 7.0));
        w.platform
            .set_usage(&t, figure(storage(INFRA), Measure::Standard, 60.0 * GIB));
        let rec = publish(&w, &manual(&[], false)).await.expect("published");
        assert_eq!(rec.result, PublishResult::Published, "{psa}: {rec:?}");
        assert_eq!(line_quantity(&w, &a, &ws), 7.0, "{psa}");
        assert_eq!(line_quantity(&w, &a, &st), 60.0, "{psa}");
        assert_eq!(rec.companies[0].company_id, c);
        assert_eq!(rec.changed_lines(), 2);
        // R-USE-8: in the history, with who started it.
        let h = w.store.publish_history(PARTNER).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].trigger.initiator(), "finance@acme.example");
        // R-USE-9: the event carries the summary.
        let ev = w.events.of_type(DETAIL_PUBLISHED);
        assert_eq!(ev.len(), 1, "{psa}");
        assert_eq!(ev[0].detail["changed_lines"], 2);
        assert_eq!(ev[0].detail["mode"], "manual");
        // R-USE-1: values are absolute — publishing again changes nothing.
        let again = publish(&w, &manual(&[], false)).await.unwrap();
        assert_eq!(again.changed_lines(), 0, "{psa}");
        assert_eq!(line_quantity(&w, &a, &ws), 7.0);
    }
}

#[tokio::test]
async fn r_use_4_publish_now_for_two_of_five_companies_and_a_dry_run_writes_nothing() {
    let w = World::new(PsaKind::Connectwise).await;
    let mut all = Vec::new();
    for n in 0..5 {
        let (c, a, ws, _, t) = payg_company(&w, &format!("Company {n}")).await;
        w.platform
            .set_usage(&t, figure(item("workstations"), Measure::Standard, 3.0));
        all.push((c, a, ws));
    }
    let (c0, c3) = (all[0].0.clone(), all[3].0.clone());
    // A dry run shows old → new with the rule, and writes and records nothing.
    let before = w.psa.state();
    let dry = publish(&w, &manual(&[&c0, &c3], true)).await.unwrap();
    assert_eq!(w.psa.state(), before);
    assert!(w.store.publish_history(PARTNER).await.unwrap().is_empty());
    assert!(w
        .events
        .published()
        .iter()
        .all(|e| !e.detail_type.starts_with("Usage")));
    let l = &dry.companies[0].lines[0];
    assert_eq!(
        (l.old, l.new, l.rule.as_str()),
        (Some(0.0), Some(3.0), "R-USE-1")
    );
    // Now for real: only the two selected companies change.
    let rec = publish(&w, &manual(&[&c0, &c3], false)).await.unwrap();
    assert_eq!(rec.companies.len(), 2);
    for (i, (_, a, ws)) in all.iter().enumerate() {
        let want = if i == 0 || i == 3 { 3.0 } else { 0.0 };
        assert_eq!(line_quantity(&w, a, ws), want, "company {i}");
    }
}

#[tokio::test]
async fn r_use_4_selecting_an_unknown_or_unmapped_company_is_refused_before_anything() {
    let w = World::new(PsaKind::Connectwise).await;
    payg_company(&w, "Contoso").await;
    let unmapped = w.psa.add_company("Not mapped");
    w.sync(Scope::Full).await;
    let before = (w.psa.state(), w.store.state());
    let err = publish(&w, &manual(&["c-nope", &unmapped], false))
        .await
        .unwrap_err();
    let text = err.to_string();
    for id in ["c-nope", unmapped.as_str()] {
        assert!(
            text.contains(&format!("company {id:?}: not mapped to a tenant")),
            "{text}"
        );
    }
    assert_eq!((w.psa.state(), w.store.state()), before);
}

#[tokio::test]
async fn r_use_7_one_company_with_a_broken_mapping_fails_alone() {
    let w = World::new(PsaKind::Connectwise).await;
    let (_, a1, ws1, _, t1) = payg_company(&w, "Good").await;
    let (c2, _, _, _, t2) = payg_company(&w, "Broken").await;
    w.platform
        .set_usage(&t1, figure(item("workstations"), Measure::Standard, 4.0));
    // The second company's tenant is deleted on the platform behind our back.
    w.platform.edit_tenant(&t2, |t| t.deleted = true);
    let rec = publish(&w, &manual(&[], false)).await.unwrap();
    assert_eq!(rec.result, PublishResult::PartlyFailed);
    assert_eq!(line_quantity(&w, &a1, &ws1), 4.0);
    let broken = rec.companies.iter().find(|c| c.company_id == c2).unwrap();
    assert!(
        broken.error.as_deref().unwrap().contains("does not have"),
        "{broken:?}"
    );
    let ev = w.events.of_type(DETAIL_PARTLY_FAILED);
    assert_eq!(ev[0].detail["failed"], 1);
    assert_eq!(ev[0].detail["details"][0]["company_id"], c2.as_str());
}

#[tokio::test]
async fn r_use_7_a_write_that_fails_fails_its_company_with_the_line_named() {
    let w = World::new(PsaKind::Connectwise).await;
    let (c, _, _, _, t) = payg_company(&w, "Contoso").await;
    w.platform
        .set_usage(&t, figure(item("workstations"), Measure::Standard, 4.0));
    w.psa.faults().fail(
        "set_line_quantity",
        1,
        PortError::NotFound {
            system: System::Psa,
            message: "no such addition".into(),
        },
    );
    let rec = publish(&w, &manual(&[], false)).await.unwrap();
    // The only company failed: the publish failed.
    assert_eq!(rec.result, PublishResult::Failed);
    let e = rec.companies[0].error.clone().unwrap();
    assert!(e.contains("line ") && e.contains("no such addition"), "{e}");
    assert_eq!(rec.companies[0].company_id, c);
    assert_eq!(w.events.of_type(DETAIL_FAILED).len(), 1);
}

#[tokio::test]
async fn r_use_10_a_psa_that_is_down_fails_the_publish_as_a_whole_in_history_and_event() {
    let w = World::new(PsaKind::Autotask).await;
    let (_, a, ws, _, t) = payg_company(&w, "Contoso").await;
    w.platform
        .set_usage(&t, figure(item("workstations"), Measure::Standard, 4.0));
    w.psa.faults().fail(
        "agreements",
        1,
        PortError::Transient {
            system: System::Psa,
            message: "503 after retries".into(),
        },
    );
    let rec = publish(&w, &manual(&[], false)).await.unwrap();
    assert_eq!(rec.result, PublishResult::Failed);
    assert!(rec.error.as_deref().unwrap().contains("503"), "{rec:?}");
    assert_eq!(line_quantity(&w, &a, &ws), 0.0);
    assert_eq!(w.store.publish_history(PARTNER).await.unwrap().len(), 1);
    assert_eq!(w.events.of_type(DETAIL_FAILED).len(), 1);
}

#[tokio::test]
async fn r_use_5_a_closed_period_uses_the_platforms_report_and_waits_while_it_is_not_ready() {
    let w = World::new(PsaKind::Connectwise).await;
    let (_, a, ws, _, t) = payg_company(&w, "Contoso").await;
    // Current usage differs from November's: the closed period must not take it.
    w.platform
        .set_usage(&t, figure(item("workstations"), Measure::Standard, 99.0));
    let november = PublishPeriod {
        label: "2026-11".into(),
        start: day("2026-11-01"),
        end: day("2026-12-01"),
        closed: true,
    };
    let mut req = manual(&[], false);
    req.period = Some(november.clone());
    let rec = publish(&w, &req).await.unwrap();
    assert_eq!(rec.result, PublishResult::NotReady);
    assert_eq!(line_quantity(&w, &a, &ws), 0.0, "never today's numbers");
    w.platform.set_period_usage(
        november.start,
        november.end,
        &t,
        figure(item("workstations"), Measure::Standard, 12.0),
    );
    let rec = publish(&w, &req).await.unwrap();
    assert_eq!(rec.result, PublishResult::Published);
    assert_eq!(line_quantity(&w, &a, &ws), 12.0);
}

#[tokio::test]
async fn r_use_8_the_history_keeps_the_last_ten() {
    let w = World::new(PsaKind::Connectwise).await;
    payg_company(&w, "Contoso").await;
    for _ in 0..12 {
        publish(&w, &manual(&[], false)).await.unwrap();
    }
    assert_eq!(w.store.publish_history(PARTNER).await.unwrap().len(), 10);
}

mod automatic {
    use super::*;
    use domain::rules::schedule::ReportingPeriod;
    use domain::services::publish::{publish_due, CLAIM_SECS};

    /// The demo partner publishing a billing month on day 1; one PAYG company whose October
    /// (the period due on 2026-11-01, before the world's 2026-11-22) used 5 workstations.
    async fn world() -> (World, String, String) {
        let w = World::new(PsaKind::Connectwise).await;
        w.update_partner(|p| {
            p.switches.usage = true;
            p.usage_period = ReportingPeriod::BillingMonth { day: 1 };
        })
        .await;
        let (_, a, ws, _, t) = payg_company(&w, "Contoso").await;
        w.platform.set_period_usage(
            day("2026-10-01"),
            day("2026-11-01"),
            &t,
            figure(item("workstations"), Measure::Standard, 5.0),
        );
        (w, a, ws)
    }

    async fn tick(w: &World, run: &str) -> Vec<PublishRecord> {
        publish_due(
            &w.store,
            &w.events,
            &w.connector,
            PARTNER,
            &PublishOptions {
                concurrency: 4,
                ..Default::default()
            },
            w.now(),
            run,
        )
        .await
        .expect("the tick runs")
    }

    #[tokio::test]
    async fn r_use_6_two_runs_racing_for_one_period_publish_it_once() {
        let (w, a, ws) = world().await;
        let (x, y) = futures::join!(tick(&w, "run-x"), tick(&w, "run-y"));
        let all: Vec<_> = x.iter().chain(&y).collect();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].result, PublishResult::Published);
        assert_eq!(all[0].slot, Some(day("2026-11-01")));
        assert_eq!(all[0].period, "2026-10");
        assert_eq!(line_quantity(&w, &a, &ws), 5.0);
        assert_eq!(w.psa.faults().calls("set_line_quantity"), 1);
        assert_eq!(
            w.store.last_publish(PARTNER).await.unwrap(),
            Some(day("2026-11-01"))
        );
        // Done for good: later ticks this month publish nothing.
        w.advance(chrono::Duration::hours(1));
        assert!(tick(&w, "run-z").await.is_empty());
        assert_eq!(w.events.of_type(DETAIL_PUBLISHED).len(), 1);
    }

    #[tokio::test]
    async fn r_use_10_wrong_credentials_fail_the_run_which_the_next_tick_retries() {
        let (w, a, ws) = world().await;
        w.connector.faults().fail(
            "connect",
            1,
            PortError::Credentials {
                system: System::Psa,
                message: "401 from ConnectWise".into(),
            },
        );
        let recs = tick(&w, "run-1").await;
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].result, PublishResult::Failed);
        assert!(recs[0].error.as_deref().unwrap().contains("401"));
        assert_eq!(w.store.publish_history(PARTNER).await.unwrap().len(), 1);
        assert_eq!(w.events.of_type(DETAIL_FAILED).len(), 1);
        assert_eq!(w.store.last_publish(PARTNER).await.unwrap(), None);
        assert_eq!(line_quantity(&w, &a, &ws), 0.0);
        // The next tick publishes the period.
        w.advance(chrono::Duration::hours(1));
        let recs = tick(&w, "run-2").await;
        assert_eq!(recs[0].result, PublishResult::Published);
        assert_eq!(line_quantity(&w, &a, &ws), 5.0);
    }

    #[tokio::test]
    async fn r_use_5_a_report_not_ready_leaves_the_period_due_without_history() {
        let (w, a, ws) = world().await;
        assert_eq!(tick(&w, "run-0").await[0].period, "2026-10");
        // December 1: November's report is not there yet.
        w.clock.set(w.now() + chrono::Duration::days(9));
        let recs = tick(&w, "run-1").await;
        let results: Vec<_> = recs.iter().map(|r| (r.period.as_str(), r.result)).collect();
        assert_eq!(results, vec![("2026-11", PublishResult::NotReady)]);
        assert_eq!(w.store.publish_history(PARTNER).await.unwrap().len(), 1);
        assert_eq!(
            w.store.last_publish(PARTNER).await.unwrap(),
            Some(day("2026-11-01"))
        );
        assert_eq!(line_quantity(&w, &a, &ws), 5.0, "never today's numbers");
        // The report arrives: the next tick publishes November.
        let t = w.tenant_of(
            &w.store.state().companies[PARTNER]
                .keys()
                .next()
                .unwrap()
                .clone(),
        );
        let t = t.unwrap().tenant.id;
        w.platform.set_period_usage(
            day("2026-11-01"),
            day("2026-12-01"),
            &t,
            figure(item("workstations"), Measure::Standard, 8.0),
        );
        w.advance(chrono::Duration::hours(1));
        let recs = tick(&w, "run-2").await;
        assert_eq!(recs[0].period, "2026-11");
        assert_eq!(recs[0].result, PublishResult::Published);
        assert_eq!(line_quantity(&w, &a, &ws), 8.0);
    }

    #[tokio::test]
    async fn r_use_6_a_run_that_died_holding_the_period_holds_it_up_only_for_its_claim() {
        let (w, a, ws) = world().await;
        assert!(w
            .store
            .claim_publish(PARTNER, day("2026-11-01"), "died", CLAIM_SECS)
            .await
            .unwrap());
        assert!(
            tick(&w, "run-1").await.is_empty(),
            "claimed by the other run"
        );
        w.advance(chrono::Duration::seconds(i64::from(CLAIM_SECS) + 60));
        let recs = tick(&w, "run-2").await;
        assert_eq!(recs[0].result, PublishResult::Published);
        assert_eq!(line_quantity(&w, &a, &ws), 5.0);
    }

    #[tokio::test]
    async fn r_use_4_usage_publishing_off_publishes_nothing_automatically() {
        let (w, a, ws) = world().await;
        w.update_partner(|p| p.switches.usage = false).await;
        assert!(tick(&w, "run-1").await.is_empty());
        assert_eq!(line_quantity(&w, &a, &ws), 0.0);
    }
}

#[tokio::test]
async fn r_co_6_r_use_3_a_company_mapped_to_a_sub_partner_gets_its_subtrees_usage() {
    use domain::rules::companies::MappingRequest;
    use domain::services::companies;
    let w = World::new(PsaKind::Connectwise).await;
    let c = w.psa.add_company("Reseller");
    let a = w.psa.add_agreement(&c, None);
    let ws = w.psa.put_line(&a, &w.products.ws.id, 0.0, None);
    let st = w.psa.put_line(&a, &w.products.stor.id, 0.0, None);
    let sub = w
        .platform
        .add_subpartner("Reseller tenant", &["c-1", "c-2"]);
    let rec = companies::map(
        &w.store,
        &w.connector,
        PARTNER,
        "Reseller",
        &MappingRequest::Existing(sub.clone()),
    )
    .await
    .expect("a sub-partner maps")
    .expect("written");
    assert_eq!(rec.tenant_id(), Some(sub.as_str()));
    // Provisioned like a customer: its items follow the lines (PAYG: unlimited, on).
    let r = w.sync(Scope::Full).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let items = w.platform.state().tenants[&sub].items.clone();
    assert!(
        items
            .iter()
            .any(|i| i.key == item("workstations") && i.enabled),
        "{items:?}"
    );
    // Its usage: the sum over its customers, not its own figure.
    w.platform
        .set_usage(&sub, figure(item("workstations"), Measure::Standard, 100.0));
    w.platform
        .set_usage("c-1", figure(item("workstations"), Measure::Standard, 3.0));
    w.platform
        .set_usage("c-2", figure(item("workstations"), Measure::Standard, 4.0));
    w.platform
        .set_usage("c-2", figure(storage(INFRA), Measure::Standard, 1.5 * GIB));
    let rec = publish(&w, &manual(&[], false)).await.expect("published");
    assert_eq!(rec.result, PublishResult::Published, "{rec:?}");
    assert_eq!(line_quantity(&w, &a, &ws), 7.0);
    assert_eq!(line_quantity(&w, &a, &st), 2.0, "1.5 GiB is billed as 2");
    // The partner's own tenant is never a company's.
    let own = w.partner().await.partner_tenant_id;
    w.psa.add_company("Oops");
    let err = companies::map(
        &w.store,
        &w.connector,
        PARTNER,
        "Oops",
        &MappingRequest::Existing(own),
    )
    .await
    .expect_err("the partner's own tenant is refused");
    assert!(
        err.to_string().contains("R-CO-6") || format!("{err:?}").contains("R-CO-6"),
        "{err:?}"
    );
}

#[tokio::test]
async fn r_use_3_a_customer_under_a_sub_partner_mapped_to_its_own_company_is_billed_once() {
    use domain::rules::companies::MappingRequest;
    use domain::services::companies;
    let w = World::new(PsaKind::Connectwise).await;
    let end = w.platform.add_customer("End customer", None);
    let sub = w.platform.add_subpartner("Reseller tenant", &[&end, "c-2"]);
    let mut lines = Vec::new();
    for (name, tenant) in [("Reseller", &sub), ("End Co", &end)] {
        let c = w.psa.add_company(name);
        let a = w.psa.add_agreement(&c, None);
        lines.push((a.clone(), w.psa.put_line(&a, &w.products.ws.id, 0.0, None)));
        companies::map(
            &w.store,
            &w.connector,
            PARTNER,
            &c,
            &MappingRequest::Existing(tenant.clone()),
        )
        .await
        .expect("maps")
        .expect("written");
    }
    w.platform
        .set_usage(&end, figure(item("workstations"), Measure::Standard, 3.0));
    w.platform
        .set_usage("c-2", figure(item("workstations"), Measure::Standard, 4.0));
    let rec = publish(&w, &manual(&[], false)).await.expect("published");
    assert_eq!(rec.result, PublishResult::Published, "{rec:?}");
    assert_eq!(
        line_quantity(&w, &lines[0].0, &lines[0].1),
        4.0,
        "the reseller is billed for c-2 only: its other customer is billed to its own company"
    );
    assert_eq!(line_quantity(&w, &lines[1].0, &lines[1].1), 3.0);
}

#[tokio::test]
async fn r_use_1_two_publishes_of_one_partner_never_write_at_once() {
    use domain::ports::Leases;
    // Autotask adjusts units by the difference: two publishes reading the same units and both
    // adjusting would add the usage twice. The second waits for the first (a partner lease).
    let w = World::new(PsaKind::Autotask).await;
    let (_, a, ws, _, t) = payg_company(&w, "Contoso").await;
    w.platform
        .set_usage(&t, figure(item("workstations"), Measure::Standard, 7.0));
    let held = w
        .store
        .lease(PARTNER, "publish", "another-run", 900)
        .await
        .unwrap();
    assert!(held.is_some());
    let err = publish(&w, &manual(&[], false)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("another publish"), "{err}");
    assert_eq!(line_quantity(&w, &a, &ws), 0.0, "nothing written");
    // A dry run writes nothing and needs no lease.
    publish(&w, &manual(&[], true)).await.expect("a dry run");
    w.store
        .release(PARTNER, "publish", "another-run")
        .await
        .unwrap();
    publish(&w, &manual(&[], false)).await.expect("published");
    assert_eq!(line_quantity(&w, &a, &ws), 7.0);
    // It let go: the next publish runs.
    publish(&w, &manual(&[], false))
        .await
        .expect("published again");
}
