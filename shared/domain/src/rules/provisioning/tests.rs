//! Table-driven tests of SPEC §4, with the seeds' own examples among the rows.

use super::*;
use crate::model::*;
use crate::plan::Change;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const TODAY: &str = "2026-11-22";

fn agreement(id: &str) -> Agreement {
    Agreement {
        id: id.into(),
        company_id: "c1".into(),
        name: format!("Agreement {id}"),
        start_date: Some(d("2026-01-01")),
        end_date: None,
        no_end_date: true,
        cancelled: false,
        cancelled_date: None,
        updated_at: None,
        payg_field: None,
    }
}

/// An Autotask contract's PAYG field as the adapter reads it (R-PROV-3).
fn payg(value: Option<&str>) -> Option<PaygField> {
    Some(PaygField::Value {
        name: "PAYG".into(),
        value: value.map(str::to_owned),
    })
}

fn line(id: &str, product: &str, qty: f64, eff: Option<&str>, cancel: Option<&str>) -> Line {
    Line {
        id: id.into(),
        agreement_id: "a1".into(),
        product_id: product.into(),
        quantity: qty,
        less_included: 0.0,
        effective_date: eff.map(d),
        cancelled_date: cancel.map(d),
    }
}

#[test]
fn r_prov_2_connectwise_line_type_follows_dates() {
    let a = agreement("a1");
    let rows: [(&str, Line, LineState); 8] = [
        (
            "seed: workstations with an empty cancelled date -> PAYG",
            line("l", "p", 5.0, Some("2026-01-01"), None),
            LineState::Active(LineKind::Payg),
        ),
        (
            "seed: backup location with a future cancelled date -> prepaid",
            line("l", "p", 100.0, Some("2026-01-01"), Some("2027-01-01")),
            LineState::Active(LineKind::Prepaid),
        ),
        (
            "cancelled today -> inactive",
            line("l", "p", 1.0, Some("2026-01-01"), Some(TODAY)),
            LineState::Inactive("line cancelled"),
        ),
        (
            "seed: cancelled date in the past -> not counted",
            line("l", "p", 1.0, Some("2026-01-01"), Some("2026-06-30")),
            LineState::Inactive("line cancelled"),
        ),
        (
            "seed: effective date in the future -> not counted",
            line("l", "p", 1.0, Some("2026-11-23"), None),
            LineState::Inactive("effective date in the future"),
        ),
        (
            "effective today -> counts",
            line("l", "p", 1.0, Some(TODAY), None),
            LineState::Active(LineKind::Payg),
        ),
        (
            "no effective date -> counts from the agreement start",
            line("l", "p", 1.0, None, None),
            LineState::Active(LineKind::Payg),
        ),
        (
            "future cancel, future effective -> not yet",
            line("l", "p", 1.0, Some("2026-12-01"), Some("2027-01-01")),
            LineState::Inactive("effective date in the future"),
        ),
    ];
    for (case, l, want) in rows {
        assert_eq!(
            PsaRules::ConnectWise.line_state(&a, &l, d(TODAY)),
            want,
            "{case}"
        );
    }
}

#[test]
fn r_prov_2_only_agreements_valid_today_count() {
    let base = agreement("a1");
    let rows: [(&str, Agreement, bool); 7] = [
        ("open-ended, started", base.clone(), true),
        (
            "cancelled flag",
            Agreement {
                cancelled: true,
                ..base.clone()
            },
            false,
        ),
        (
            "cancelled date passed",
            Agreement {
                cancelled_date: Some(d("2026-11-01")),
                ..base.clone()
            },
            false,
        ),
        (
            "not started",
            Agreement {
                start_date: Some(d("2026-12-01")),
                ..base.clone()
            },
            false,
        ),
        (
            "ended yesterday",
            Agreement {
                no_end_date: false,
                end_date: Some(d("2026-11-21")),
                ..base.clone()
            },
            false,
        ),
        (
            "ends today",
            Agreement {
                no_end_date: false,
                end_date: Some(d(TODAY)),
                ..base.clone()
            },
            true,
        ),
        (
            "no-end flag wins over a stale end date",
            Agreement {
                no_end_date: true,
                end_date: Some(d("2020-01-01")),
                ..base
            },
            true,
        ),
    ];
    for (case, a, valid) in rows {
        assert_eq!(
            PsaRules::ConnectWise.agreement_counts(&a, d(TODAY)).is_ok(),
            valid,
            "{case}"
        );
    }
}

#[test]
fn r_prov_3_autotask_contract_payg_field_decides_every_line() {
    let mut a = agreement("a1");
    let l = line("l", "p", 3.0, None, None);
    a.payg_field = payg(Some("Yes"));
    assert_eq!(
        PsaRules::Autotask.line_state(&a, &l, d(TODAY)),
        LineState::Active(LineKind::Payg)
    );
    a.payg_field = None;
    assert_eq!(
        PsaRules::Autotask.line_state(&a, &l, d(TODAY)),
        LineState::Active(LineKind::Prepaid)
    );
    a.end_date = Some(d("2026-11-01"));
    assert!(matches!(
        PsaRules::Autotask.line_state(&a, &l, d(TODAY)),
        LineState::Inactive(_)
    ));
}

#[test]
fn r_prov_3_autotask_contract_table_with_the_mixed_or_unknown_case() {
    let base = Agreement {
        no_end_date: false,
        end_date: Some(d("2027-01-31")),
        ..agreement("a1")
    };
    let l = line("l", "p", 3.0, None, None);
    let rows: [(&str, Agreement, LineState); 7] = [
        (
            "PAYG field yes -> every line PAYG",
            Agreement {
                payg_field: payg(Some("Yes")),
                ..base.clone()
            },
            LineState::Active(LineKind::Payg),
        ),
        (
            "PAYG field no -> prepaid",
            Agreement {
                payg_field: payg(Some("No")),
                ..base.clone()
            },
            LineState::Active(LineKind::Prepaid),
        ),
        (
            "seed: PAYG field unset -> prepaid by default",
            base.clone(),
            LineState::Active(LineKind::Prepaid),
        ),
        (
            "mixed/unknown PAYG value -> not guessed, not counted",
            Agreement {
                payg_field: payg(Some("PAYG+PRE")),
                ..base.clone()
            },
            LineState::Inactive("contract not classified as PAYG or prepaid"),
        ),
        (
            "inactive status wins over an unknown PAYG value",
            Agreement {
                cancelled: true,
                payg_field: payg(Some("PAYG+PRE")),
                ..base.clone()
            },
            LineState::Inactive("contract inactive"),
        ),
        (
            "not started",
            Agreement {
                start_date: Some(d("2026-12-01")),
                ..base.clone()
            },
            LineState::Inactive("contract not started"),
        ),
        (
            "ends today -> still counts",
            Agreement {
                end_date: Some(d(TODAY)),
                ..base
            },
            LineState::Active(LineKind::Prepaid),
        ),
    ];
    for (case, a, want) in rows {
        assert_eq!(
            PsaRules::Autotask.line_state(&a, &l, d(TODAY)),
            want,
            "{case}"
        );
    }
}

/// The sync reads the lines of the agreements `PsaRules::agreement_counts` accepts (the
/// snapshot's filter), and planning counts (or holds the company for) exactly those: a line
/// read is never one planning ignores for a reason of the agreement, and planning never needs
/// a line that was not read.
#[test]
fn r_prov_2_r_prov_3_planning_and_the_snapshot_filter_share_one_validity_decision() {
    let base = Agreement {
        no_end_date: false,
        end_date: Some(d("2027-01-31")),
        ..agreement("a1")
    };
    let rows: [(&str, Agreement); 10] = [
        ("valid", base.clone()),
        (
            "cancelled",
            Agreement {
                cancelled: true,
                ..base.clone()
            },
        ),
        (
            "cancelled date passed",
            Agreement {
                cancelled_date: Some(d("2026-11-01")),
                ..base.clone()
            },
        ),
        (
            "cancelled date later",
            Agreement {
                cancelled_date: Some(d("2026-12-01")),
                ..base.clone()
            },
        ),
        (
            "not started",
            Agreement {
                start_date: Some(d("2026-12-01")),
                ..base.clone()
            },
        ),
        (
            "ended",
            Agreement {
                end_date: Some(d("2026-11-21")),
                ..base.clone()
            },
        ),
        (
            "ended, no-end flag",
            Agreement {
                end_date: Some(d("2026-11-21")),
                no_end_date: true,
                ..base.clone()
            },
        ),
        (
            "PAYG yes",
            Agreement {
                payg_field: payg(Some("Yes")),
                ..base.clone()
            },
        ),
        (
            "PAYG unknown",
            Agreement {
                payg_field: payg(Some("maybe")),
                ..base.clone()
            },
        ),
        (
            "PAYG unknown, ended",
            Agreement {
                end_date: Some(d("2026-11-21")),
                payg_field: payg(Some("maybe")),
                ..base
            },
        ),
    ];
    for psa in [PsaKind::Connectwise, PsaKind::Autotask] {
        for (case, a) in &rows {
            let read = psa.rules().agreement_counts(a, d(TODAY)).is_ok();
            let with_line = [AgreementWithLines {
                agreement: a.clone(),
                lines: vec![line("l1", "ws", 2.0, Some("2026-01-01"), None)],
            }];
            let counted = !active_lines(psa, &with_line, d(TODAY)).is_empty();
            let held = psa.rules().agreement_problem(a, d(TODAY)).is_some();
            assert_eq!(read, counted || held, "{psa} {case}");
            assert!(!(counted && held), "{psa} {case}");
            let mut p = partner();
            p.psa = psa;
            let plan = plan_company(
                &p,
                &snapshot(Some(&company()), None, &with_line, None, &[]),
                d(TODAY),
            );
            assert_eq!(plan.problem.is_some(), held, "{psa} {case}");
        }
    }
}

fn prod(id: &str) -> Option<ProductRef> {
    Some(ProductRef {
        id: id.into(),
        identifier: format!("P{id}"),
    })
}

fn mapping() -> ProductMapping {
    ProductMapping {
        items: vec![
            ItemMapping {
                item: ItemKey::new("workstations", None),
                product: prod("ws"),
                free: false,
                usage: Default::default(),
            },
            ItemMapping {
                item: ItemKey::new("mailboxes", None),
                product: prod("o365"),
                free: true,
                usage: Default::default(),
            },
            ItemMapping {
                item: ItemKey::new("servers", None),
                product: prod("srv"),
                free: false,
                usage: Default::default(),
            },
            ItemMapping {
                item: ItemKey::new("storage", Some("cloud")),
                product: prod("stor"),
                free: false,
                usage: Default::default(),
            },
            ItemMapping {
                item: ItemKey::new("storage", Some("azure")),
                product: prod("stor-az"),
                free: true,
                usage: Default::default(),
            },
        ],
        default_storage: Some("cloud".into()),
        public_cloud: vec![],
    }
}

fn active(id: &str, product: &str, kind: LineKind, qty: f64) -> ActiveLine {
    ActiveLine {
        line_id: id.into(),
        agreement_id: "a1".into(),
        product_id: product.into(),
        kind,
        quantity: qty,
    }
}

fn find<'a>(items: &'a [DesiredItem], name: &str, infra: Option<&str>) -> &'a DesiredItem {
    items
        .iter()
        .find(|i| i.item == ItemKey::new(name, infra))
        .unwrap()
}

const GIB: f64 = STORAGE_UNIT_BYTES;

#[test]
fn r_prov_4_quota_follows_the_lines() {
    use LineKind::*;
    type Row = (
        &'static str,
        Vec<ActiveLine>,
        &'static str,
        Option<&'static str>,
        Quota,
        bool,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (
            "seed: Office 365 seats mapped, absent from additions, free on -> unlimited, no usage sync",
            vec![],
            "mailboxes",
            None,
            Quota::UNLIMITED,
            false,
            "R-PROV-4",
        ),
        (
            "seed: workstations with an empty cancelled date -> PAYG, unlimited, usage published",
            vec![active("l1", "ws", Payg, 0.0)],
            "workstations",
            None,
            Quota::UNLIMITED,
            true,
            "R-PROV-4",
        ),
        (
            "seed: backup location with a future cancelled date -> prepaid, quota = total quantity",
            vec![active("l1", "stor", Prepaid, 100.0)],
            "storage",
            Some("cloud"),
            Quota::hard(100.0 * GIB),
            false,
            "R-PROV-4",
        ),
        (
            "seed: 10 prepaid workstations + PAYG of the same product -> soft 10, unlimited overage",
            vec![active("l1", "ws", Prepaid, 10.0), active("l2", "ws", Payg, 0.0)],
            "workstations",
            None,
            Quota::soft(10.0),
            true,
            "R-PROV-4",
        ),
        (
            "two prepaid lines add up",
            vec![active("l1", "ws", Prepaid, 10.0), active("l2", "ws", Prepaid, 5.0)],
            "workstations",
            None,
            Quota::hard(15.0),
            false,
            "R-PROV-4",
        ),
        (
            "mapped, not free, no line -> 0",
            vec![active("l1", "ws", Payg, 0.0)],
            "servers",
            None,
            Quota::ZERO,
            false,
            "R-PROV-4",
        ),
        (
            "seed: a non-default storage without a line -> 0, even when free",
            vec![active("l1", "stor", Prepaid, 50.0)],
            "storage",
            Some("azure"),
            Quota::ZERO,
            false,
            "R-PROV-5",
        ),
        (
            "non-default storage with a PAYG line -> unlimited",
            vec![active("l1", "stor-az", Payg, 0.0)],
            "storage",
            Some("azure"),
            Quota::UNLIMITED,
            true,
            "R-PROV-4",
        ),
    ];
    for (case, lines, name, infra, quota, publishes, rule) in rows {
        let items = desired_items(&mapping(), &lines);
        let got = find(&items, name, infra);
        assert_eq!(got.quota, quota, "{case}");
        assert_eq!(
            matches!(got.billing, Billing::Payg { .. }),
            publishes,
            "{case}"
        );
        assert_eq!(got.rule, rule, "{case}");
    }
}

#[test]
fn r_prov_4_combined_lines_publish_usage_to_the_payg_line() {
    let lines = vec![
        active("pre", "ws", LineKind::Prepaid, 10.0),
        active("payg", "ws", LineKind::Payg, 0.0),
    ];
    let items = desired_items(&mapping(), &lines);
    assert_eq!(
        find(&items, "workstations", None).billing,
        Billing::Payg {
            line_id: "payg".into(),
            agreement_id: "a1".into()
        }
    );
}

#[test]
fn r_prov_5_no_storage_line_at_all_assigns_the_default_storage() {
    let mut m = mapping();
    m.items[3].free = true; // default storage free
    let items = desired_items(&m, &[active("l1", "ws", LineKind::Payg, 0.0)]);
    let ds = find(&items, "storage", Some("cloud"));
    assert!(ds.enabled, "default storage is assigned");
    assert_eq!(ds.quota, Quota::UNLIMITED);
    assert_eq!(ds.rule, "R-PROV-5");
    let other = find(&items, "storage", Some("azure"));
    assert!(!other.enabled && other.quota.is_zero());
    // With a storage line elsewhere, the default storage is not forced on.
    let items = desired_items(&mapping(), &[active("l1", "stor-az", LineKind::Payg, 0.0)]);
    assert!(!find(&items, "storage", Some("cloud")).enabled);
}

fn partner() -> Partner {
    Partner {
        id: "acme".into(),
        name: "Acme".into(),
        psa: PsaKind::Connectwise,
        enabled: true,
        platform_url: "https://dc.example".into(),
        partner_tenant_id: "pt".into(),
        switches: Switches::default(),
        provisioning: ProvisioningSettings {
            auto_create: true,
            ..Default::default()
        },
        guard: GuardSettings::default(),
        mapping: mapping(),
        two_way: TwoWaySettings::default(),
        autotask: Default::default(),
        time_zone: "UTC".into(),
        full_sync_hours: 24,
        line_refresh_hours: 24,
        usage_period: Default::default(),
        version: 1,
    }
}

fn company() -> PsaCompany {
    PsaCompany {
        id: "c1".into(),
        identifier: "ACME".into(),
        name: "Acme Customer".into(),
        types: vec!["Customer".into()],
        status: Some("Active".into()),
        active: true,
        primary_contact: Some(Contact {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: Some("ada@acme.example".into()),
        }),
        updated_at: None,
    }
}

fn tenant(id: &str) -> Tenant {
    Tenant {
        kind: crate::model::TenantKind::Customer,
        id: id.into(),
        parent_id: Some("pt".into()),
        name: "Acme Customer".into(),
        enabled: true,
        customer_id: Some("c1".into()),
        version: 3,
        self_service: false,
        support_access: true,
        pricing_mode: Some("production".into()),
        deleted: false,
    }
}

fn ws_payg() -> Vec<AgreementWithLines> {
    vec![AgreementWithLines {
        agreement: agreement("a1"),
        lines: vec![line("l1", "ws", 0.0, Some("2026-01-01"), None)],
    }]
}

fn snapshot<'a>(
    company: Option<&'a PsaCompany>,
    record: Option<&'a CompanyRecord>,
    agreements: &'a [AgreementWithLines],
    tenant: Option<&'a Tenant>,
    items: &'a [CurrentItem],
) -> CompanySnapshot<'a> {
    CompanySnapshot {
        company_id: "c1",
        company,
        record,
        agreements,
        tenant,
        tenant_items: items,
    }
}

#[test]
fn r_prov_1_unmapped_company_with_an_active_mapped_line_gets_a_tenant() {
    let c = company();
    let ag = ws_payg();
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), None, &ag, None, &[]),
        d(TODAY),
    );
    let Change::CreateTenant {
        tenant_name,
        admin,
        trial,
        ..
    } = &plan.changes[0]
    else {
        panic!("{:?}", plan.changes)
    };
    assert_eq!(tenant_name, "Acme Customer");
    assert_eq!(
        admin.as_ref().unwrap().email.as_deref(),
        Some("ada@acme.example")
    );
    assert!(!trial);
    assert!(plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::SetQuota { item, new, .. }
        if item.name == "workstations" && *new == Quota::UNLIMITED)));
    assert_eq!(plan.record.unwrap().mapping, Mapping::NewTenant);

    // named after the primary contact, trial mode
    let mut p = partner();
    p.provisioning.tenant_name = TenantNameFrom::PrimaryContact;
    p.provisioning.mode = PricingMode::Trial;
    let plan = plan_company(&p, &snapshot(Some(&c), None, &ag, None, &[]), d(TODAY));
    assert!(
        matches!(&plan.changes[0], Change::CreateTenant { tenant_name, trial: true, .. } if tenant_name == "Ada Lovelace")
    );
    assert_eq!(plan.record.unwrap().trial_since, Some(d(TODAY)));

    // without the switch, or without a mapped line: nothing
    let mut off = partner();
    off.provisioning.auto_create = false;
    assert!(
        plan_company(&off, &snapshot(Some(&c), None, &ag, None, &[]), d(TODAY))
            .changes
            .is_empty()
    );
    let unmapped_product = vec![AgreementWithLines {
        agreement: agreement("a1"),
        lines: vec![line("l1", "other", 1.0, None, None)],
    }];
    assert!(plan_company(
        &partner(),
        &snapshot(Some(&c), None, &unmapped_product, None, &[]),
        d(TODAY)
    )
    .changes
    .is_empty());
}

#[test]
fn r_prov_1_a_tenant_carrying_the_company_id_is_adopted_not_duplicated() {
    let c = company();
    let ag = ws_payg();
    let t = tenant("t1");
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), None, &ag, Some(&t), &[]),
        d(TODAY),
    );
    assert!(matches!(&plan.changes[0], Change::AdoptTenant { tenant_id, .. } if tenant_id == "t1"));
    assert!(!plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::CreateTenant { .. })));
    assert_eq!(plan.record.unwrap().mapping, Mapping::Tenant("t1".into()));
}

#[test]
fn r_prov_1_trial_switches_to_production_after_one_full_month() {
    let c = company();
    let ag = ws_payg();
    let mut t = tenant("t1");
    t.pricing_mode = Some("trial".into());
    let mut rec = CompanyRecord::new("c1", "Acme", Mapping::Tenant("t1".into()));
    rec.trial_since = Some(d("2026-10-23"));
    let early = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &ag, Some(&t), &[]),
        d(TODAY),
    );
    assert!(!early
        .changes
        .iter()
        .any(|c| matches!(c, Change::SwitchToProduction { .. })));
    assert_eq!(early.record.unwrap().next_review, Some(d("2026-11-23")));
    rec.trial_since = Some(d("2026-10-22"));
    let due = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &ag, Some(&t), &[]),
        d(TODAY),
    );
    assert!(due.changes.iter().any(|c| matches!(
        c,
        Change::SwitchToProduction {
            rule: "R-PROV-1",
            ..
        }
    )));
}

fn items_now(ws: Quota) -> Vec<CurrentItem> {
    vec![
        CurrentItem {
            key: ItemKey::new("workstations", None),
            enabled: true,
            quota: ws,
            updated_at: None,
        },
        CurrentItem {
            key: ItemKey::new("mailboxes", None),
            enabled: true,
            quota: Quota::UNLIMITED,
            updated_at: None,
        },
        CurrentItem {
            key: ItemKey::new("servers", None),
            enabled: false,
            quota: Quota::UNLIMITED,
            updated_at: None,
        },
        CurrentItem {
            key: ItemKey::new("storage", Some("cloud")),
            enabled: true,
            quota: Quota::ZERO,
            updated_at: None,
        },
        CurrentItem {
            key: ItemKey::new("storage", Some("azure")),
            enabled: false,
            quota: Quota::UNLIMITED,
            updated_at: None,
        },
    ]
}

#[test]
fn r_prov_6_a_quota_changed_by_hand_is_set_back() {
    let c = company();
    let ag = ws_payg();
    let t = tenant("t1");
    let rec = CompanyRecord::new("c1", "Acme", Mapping::Tenant("t1".into()));
    let in_sync = items_now(Quota::UNLIMITED);
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &ag, Some(&t), &in_sync),
        d(TODAY),
    );
    assert!(
        plan.changes.is_empty(),
        "nothing to do when in sync: {:?}",
        plan.changes
    );
    let by_hand = items_now(Quota::hard(3.0));
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &ag, Some(&t), &by_hand),
        d(TODAY),
    );
    assert_eq!(
        plan.changes,
        vec![Change::SetQuota {
            company_id: "c1".into(),
            tenant_id: Some("t1".into()),
            item: ItemKey::new("workstations", None),
            old: Some(Quota::hard(3.0)),
            new: Quota::UNLIMITED,
            enabled: true,
            rule: "R-PROV-4",
        }]
    );
}

#[test]
fn r_prov_7_deprovisioning_switches_follow_the_clock() {
    let c = company();
    let none: Vec<AgreementWithLines> = vec![];
    let t = tenant("t1");
    let items = items_now(Quota::UNLIMITED);
    let rec = CompanyRecord::new("c1", "Acme", Mapping::Tenant("t1".into()));

    // all switches off: nothing happens, the day is remembered
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &none, Some(&t), &items),
        d(TODAY),
    );
    assert!(plan.changes.is_empty());
    assert_eq!(plan.record.as_ref().unwrap().inactive_since, Some(d(TODAY)));

    let mut p = partner();
    p.provisioning.deprovision = Deprovisioning {
        zero_quotas: true,
        disable_after_days: Some(7),
        delete_after_days: Some(30),
    };
    let day0 = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec), &none, Some(&t), &items),
        d(TODAY),
    );
    assert!(day0
        .changes
        .iter()
        .all(|c| matches!(c, Change::SetQuota { new, rule: "R-PROV-7", .. } if new.is_zero())));
    assert_eq!(
        day0.changes.len(),
        3,
        "the enabled items go to 0: {:?}",
        day0.changes
    );
    let rec0 = day0.record.unwrap();
    assert_eq!(rec0.next_review, Some(d("2026-11-29")));

    let day7 = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec0), &none, Some(&t), &[]),
        d("2026-11-29"),
    );
    assert!(matches!(
        day7.changes.as_slice(),
        [Change::DisableTenant {
            rule: "R-PROV-7",
            ..
        }]
    ));
    let rec7 = day7.record.unwrap();
    assert!(rec7.disabled_by_us);

    let mut disabled = t.clone();
    disabled.enabled = false;
    let day30 = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec7), &none, Some(&disabled), &[]),
        d("2026-12-22"),
    );
    assert!(matches!(
        day30.changes.as_slice(),
        [Change::DeleteTenant { .. }]
    ));
    assert_eq!(day30.record.unwrap().mapping, Mapping::Unmapped);

    // lines come back before deletion: the tenant is enabled again
    let ag = ws_payg();
    let back = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec7), &ag, Some(&disabled), &[]),
        d("2026-12-01"),
    );
    assert!(back
        .changes
        .iter()
        .any(|c| matches!(c, Change::EnableTenant { .. })));
    assert_eq!(back.record.unwrap().inactive_since, None);
}

#[test]
fn r_prov_10_guard_stops_a_run_that_zeroes_too_many_quotas() {
    let zero = |i: usize| Change::SetQuota {
        company_id: format!("c{i}"),
        tenant_id: Some(format!("t{i}")),
        item: ItemKey::new("workstations", None),
        old: Some(Quota::UNLIMITED),
        new: Quota::ZERO,
        enabled: false,
        rule: "R-PROV-4",
    };
    let plan = |n: usize| Plan {
        partner: "acme".into(),
        changes: (0..n).map(zero).collect(),
        problems: vec![],
    };
    let g = GuardSettings {
        max_zero_share: 0.25,
        min_zeroed: 5,
    };
    let rows: [(&str, usize, usize, bool, bool); 5] = [
        ("few zeroed, below the minimum", 4, 10, false, true),
        ("half of the partner zeroed", 50, 100, false, false),
        ("same, forced", 50, 100, true, true),
        ("a quarter exactly is allowed", 25, 100, false, true),
        ("everything zeroed", 10, 10, false, false),
    ];
    for (case, zeroed, total, force, ok) in rows {
        let r = guard(&plan(zeroed), total, &g, force);
        assert_eq!(r.is_ok(), ok, "{case}: {r:?}");
        if let Err(e) = r {
            assert!(e.contains("R-PROV-10") && e.contains("--force"), "{e}");
        }
    }
}

#[test]
fn r_prov_9_plan_json_names_the_rule_and_old_and_new_quota() {
    let c = company();
    let ag = ws_payg();
    let t = tenant("t1");
    let rec = CompanyRecord::new("c1", "Acme", Mapping::Tenant("t1".into()));
    let by_hand = items_now(Quota::hard(3.0));
    let plan = plan_company(
        &partner(),
        &snapshot(Some(&c), Some(&rec), &ag, Some(&t), &by_hand),
        d(TODAY),
    );
    let json = serde_json::to_value(&plan.changes).unwrap();
    assert_eq!(json[0]["action"], "set_quota");
    assert_eq!(json[0]["rule"], "R-PROV-4");
    assert_eq!(json[0]["old"]["value"], 3.0);
    assert_eq!(json[0]["new"]["value"], serde_json::Value::Null);
}

#[test]
fn next_review_is_the_next_date_a_line_changes_by_itself() {
    let ag = vec![AgreementWithLines {
        agreement: agreement("a1"),
        lines: vec![
            line("l1", "ws", 1.0, Some("2026-12-01"), None),
            line("l2", "ws", 1.0, Some("2026-01-01"), Some("2026-11-30")),
        ],
    }];
    assert_eq!(next_review(&ag, d(TODAY)), Some(d("2026-11-30")));
}

#[test]
fn r_prov_3_a_company_with_an_unclassified_contract_is_reported_and_left_alone() {
    let mut p = partner();
    p.psa = PsaKind::Autotask;
    p.provisioning.deprovision.zero_quotas = true;
    let c = company();
    let t = tenant("t1");
    let rec = CompanyRecord::new("c1", "Acme", Mapping::Tenant("t1".into()));
    let items = items_now(Quota::hard(3.0));
    let mut bad = ws_payg();
    bad[0].agreement.payg_field = payg(Some("maybe"));

    // mapped: no quota change (not even R-PROV-7 zeroing), the problem is on the plan and the
    // record (its last error)
    let plan = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec), &bad, Some(&t), &items),
        d(TODAY),
    );
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    let why = plan.problem.as_deref().unwrap();
    assert!(why.contains("c1") && why.contains("maybe"), "{why}");
    assert!(plan.record.is_some());

    // unmapped with auto-create: no tenant is created, no record is made up
    let plan = plan_company(&p, &snapshot(Some(&c), None, &bad, None, &[]), d(TODAY));
    assert!(plan.changes.is_empty() && plan.problem.is_some() && plan.record.is_none());

    // an ended contract's bad value does not hold the company
    bad[0].agreement.no_end_date = false;
    bad[0].agreement.end_date = Some(d("2026-10-31"));
    let plan = plan_company(
        &p,
        &snapshot(Some(&c), Some(&rec), &bad, Some(&t), &items),
        d(TODAY),
    );
    assert!(plan.problem.is_none());
}

fn storage_with_usage_products() -> ProductMapping {
    ProductMapping {
        items: vec![ItemMapping {
            item: ItemKey::new("storage", Some("xyz")),
            product: prod("xyz"),
            free: true,
            usage: StorageUsageProducts {
                class1: prod("xyz-free"),
                class2: prod("xyz-billed"),
                geo: prod("xyz-gr"),
            },
        }],
        default_storage: Some("xyz".into()),
        public_cloud: vec![],
    }
}

#[test]
fn r_map_3_storage_quota_follows_the_lines_of_all_its_products() {
    let gb = STORAGE_UNIT_BYTES;
    let rows: Vec<(&str, Vec<ActiveLine>, Quota, &str)> = vec![
        (
            "seed 004: prepaid class 2 (billed) 100 GB -> hard quota 100 GB",
            vec![active("l1", "xyz-billed", LineKind::Prepaid, 100.0)],
            Quota::hard(100.0 * gb),
            "R-MAP-3",
        ),
        (
            "seed 004: PAYG class 2 only -> unlimited",
            vec![active("l1", "xyz-billed", LineKind::Payg, 0.0)],
            Quota::UNLIMITED,
            "R-MAP-3",
        ),
        (
            "seed 004: PAYG class 1 and class 2 -> unlimited",
            vec![
                active("l1", "xyz-free", LineKind::Payg, 0.0),
                active("l2", "xyz-billed", LineKind::Payg, 0.0),
            ],
            Quota::UNLIMITED,
            "R-MAP-3",
        ),
        (
            "prepaid class 1 10 GB + class 2 50 GB -> they bound the total: 60 GB",
            vec![
                active("l1", "xyz-free", LineKind::Prepaid, 10.0),
                active("l2", "xyz-billed", LineKind::Prepaid, 50.0),
            ],
            Quota::hard(60.0 * gb),
            "R-MAP-3",
        ),
        (
            "prepaid total 200 GB covers class 2 100 GB: 200 GB",
            vec![
                active("l1", "xyz", LineKind::Prepaid, 200.0),
                active("l2", "xyz-billed", LineKind::Prepaid, 100.0),
            ],
            Quota::hard(200.0 * gb),
            "R-MAP-3",
        ),
        (
            "prepaid geo-redundant 20 GB + PAYG class 2 -> soft 20 GB, unlimited overage",
            vec![
                active("l1", "xyz-gr", LineKind::Prepaid, 20.0),
                active("l2", "xyz-billed", LineKind::Payg, 0.0),
            ],
            Quota::soft(20.0 * gb),
            "R-MAP-3",
        ),
        (
            "a quota-and-total line at 0 units next to class lines: the classes bound it",
            vec![
                active("l0", "xyz", LineKind::Prepaid, 0.0),
                active("l2", "xyz-billed", LineKind::Prepaid, 50.0),
            ],
            Quota::hard(50.0 * gb),
            "R-MAP-3",
        ),
        (
            "only the quota-and-total product -> plain R-PROV-4",
            vec![active("l1", "xyz", LineKind::Prepaid, 30.0)],
            Quota::hard(30.0 * gb),
            "R-PROV-4",
        ),
    ];
    let m = storage_with_usage_products();
    for (case, lines, quota, rule) in rows {
        let items = desired_items(&m, &lines);
        let s = find(&items, "storage", Some("xyz"));
        assert_eq!((s.quota, s.enabled, s.rule), (quota, true, rule), "{case}");
    }
    // A class 2 line is a storage line: the default storage is not assigned by R-PROV-5 then,
    // and a company with only that line has a mapped line (R-PROV-1 creates its tenant).
    let lines = [active("l1", "xyz-billed", LineKind::Payg, 0.0)];
    assert!(has_mapped_line(&m, &lines));
    // PAYG usage is published to the quota-and-total product's line when it has one.
    let lines = [
        active("l2", "xyz-billed", LineKind::Payg, 0.0),
        active("l1", "xyz", LineKind::Payg, 0.0),
    ];
    let items = desired_items(&m, &lines);
    assert_eq!(
        find(&items, "storage", Some("xyz")).billing,
        Billing::Payg {
            line_id: "l1".into(),
            agreement_id: "a1".into()
        }
    );
}

// R-PROV-1 R-PROV-11: a new tenant's set-up, step by step, as the platform created it.
#[test]
fn r_prov_11_setup_steps_follow_the_settings_and_what_the_platform_created() {
    use crate::model::{Contact, PricingMode, SetupStep};
    let ada = Contact {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: Some("ada@example.com".into()),
    };
    let no_mail = Contact {
        email: None,
        ..ada.clone()
    };
    type Row<'a> = (
        &'a str,
        bool,
        bool,
        Option<&'a str>,
        Option<&'a Contact>,
        Vec<SetupStep>,
    );
    let rows: [Row; 6] = [
        (
            "production as created",
            false,
            false,
            Some("production"),
            None,
            vec![],
        ),
        (
            "trial wanted",
            true,
            false,
            Some("production"),
            None,
            vec![SetupStep::Pricing(PricingMode::Trial)],
        ),
        (
            "created in trial, production wanted",
            false,
            false,
            Some("trial"),
            None,
            vec![SetupStep::Pricing(PricingMode::Production)],
        ),
        ("trial as created", true, false, Some("trial"), None, vec![]),
        (
            "two-factor and an admin",
            false,
            true,
            None,
            Some(&ada),
            vec![SetupStep::TwoFactor, SetupStep::InviteAdmin(ada.clone())],
        ),
        (
            "an admin without e-mail is not invited",
            false,
            false,
            None,
            Some(&no_mail),
            vec![],
        ),
    ];
    for (case, trial, two_factor, created, admin, want) in rows {
        assert_eq!(
            setup_steps(trial, two_factor, created, admin),
            want,
            "{case}"
        );
    }
}
