//! R-TWO: platform changes carried to the Autotask contract, with the seed's public cloud rows.

use super::*;
use crate::model::*;
use crate::rules::units::STORAGE_UNIT_BYTES;
use chrono::TimeZone;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const TODAY: &str = "2026-11-22";

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap()
}

fn p(id: &str) -> ProductRef {
    ProductRef {
        id: id.into(),
        identifier: format!("S-{id}"),
    }
}

fn partner(two_way: bool) -> Partner {
    Partner {
        id: "acme".into(),
        name: "Acme".into(),
        psa: PsaKind::Autotask,
        enabled: true,
        platform_url: "https://dc.example".into(),
        partner_tenant_id: "pt".into(),
        switches: Switches {
            two_way_sync: two_way,
            ..Switches::default()
        },
        provisioning: ProvisioningSettings::default(),
        guard: GuardSettings::default(),
        mapping: ProductMapping {
            items: vec![
                ItemMapping {
                    item: ItemKey::new("workstations", None),
                    product: Some(p("ws")),
                    free: false,
                    usage: Default::default(),
                },
                ItemMapping {
                    item: ItemKey::new("storage", Some("cloud")),
                    product: Some(p("stor")),
                    free: true,
                    usage: StorageUsageProducts {
                        class2: Some(p("stor-billed")),
                        ..Default::default()
                    },
                },
            ],
            default_storage: Some("cloud".into()),
            public_cloud: vec![
                CloudProduct {
                    vendor: CloudVendor::Azure,
                    product: p("azure"),
                },
                CloudProduct {
                    vendor: CloudVendor::AmazonS3,
                    product: p("s3"),
                },
            ],
        },
        two_way: TwoWaySettings::default(),
        autotask: Default::default(),
        time_zone: "UTC".into(),
        full_sync_hours: 24,
        line_refresh_hours: 24,
        usage_period: Default::default(),
        version: 1,
    }
}

fn contract(id: &str, payg: bool, lines: Vec<Line>) -> AgreementWithLines {
    AgreementWithLines {
        agreement: Agreement {
            id: id.into(),
            company_id: "c1".into(),
            name: format!("Contract {id}"),
            start_date: Some(d("2026-01-01")),
            end_date: Some(d("2027-12-31")),
            no_end_date: false,
            cancelled: false,
            cancelled_date: None,
            updated_at: None,
            payg_field: Some(PaygField::Value {
                name: "PAYG".into(),
                value: Some(if payg { "Yes" } else { "No" }.into()),
            }),
        },
        lines,
    }
}

/// The company's one contract `k1` with lines (id, product, units).
fn k1(payg: bool, lines: &[(&str, &str, f64)]) -> Vec<AgreementWithLines> {
    let lines = lines
        .iter()
        .map(|(id, product, units)| line(id, "k1", product, *units))
        .collect();
    vec![contract("k1", payg, lines)]
}

fn line(id: &str, contract: &str, product: &str, units: f64) -> Line {
    Line {
        id: id.into(),
        agreement_id: contract.into(),
        product_id: product.into(),
        quantity: units,
        less_included: 0.0,
        effective_date: None,
        cancelled_date: None,
    }
}

fn item(name: &str, infra: Option<&str>, enabled: bool, quota: Quota, at: u32) -> CurrentItem {
    CurrentItem {
        key: ItemKey::new(name, infra),
        enabled,
        quota,
        updated_at: Some(t(at)),
    }
}

fn tenant() -> Tenant {
    Tenant {
        kind: crate::model::TenantKind::Customer,
        id: "t1".into(),
        parent_id: Some("pt".into()),
        name: "Customer".into(),
        enabled: true,
        customer_id: Some("c1".into()),
        version: 1,
        self_service: false,
        support_access: true,
        pricing_mode: Some("production".into()),
        deleted: false,
    }
}

/// A mapped company whose last write to the platform was at 10:00.
fn record(removed: &[&str]) -> CompanyRecord {
    CompanyRecord {
        platform_written: Some(t(10)),
        last_sync: Some(t(10)),
        removed_lines: removed.iter().map(|s| s.to_string()).collect(),
        ..CompanyRecord::new("c1", "Customer", Mapping::Tenant("t1".into()))
    }
}

fn vendors() -> BTreeMap<String, CloudVendor> {
    [
        ("az1", CloudVendor::Azure),
        ("az2", CloudVendor::Azure),
        ("s3a", CloudVendor::AmazonS3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn run(
    partner: &Partner,
    rec: &CompanyRecord,
    agreements: &[AgreementWithLines],
    items: &[CurrentItem],
) -> CompanyPlan {
    let tenant = tenant();
    let snap = CompanySnapshot {
        company_id: "c1",
        company: None,
        record: Some(rec),
        agreements,
        tenant: Some(&tenant),
        tenant_items: items,
    };
    plan_company(partner, &snap, &vendors(), d(TODAY))
}

fn storage_on() -> CurrentItem {
    item(
        "storage",
        Some("cloud"),
        true,
        Quota::hard(100.0 * STORAGE_UNIT_BYTES),
        9,
    )
}

fn adds(plan: &CompanyPlan) -> Vec<(String, String, f64, &'static str)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::AddLine {
                agreement_id,
                product,
                quantity,
                rule,
                ..
            } => Some((agreement_id.clone(), product.id.clone(), *quantity, *rule)),
            _ => None,
        })
        .collect()
}

fn sets(plan: &CompanyPlan) -> Vec<(String, f64, f64, &'static str)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::SetLineQuantity {
                line_id,
                old,
                new,
                rule,
                ..
            } => Some((line_id.clone(), *old, *new, *rule)),
            _ => None,
        })
        .collect()
}

fn quota_of(plan: &CompanyPlan, name: &str) -> Option<(Quota, bool)> {
    plan.changes.iter().find_map(|c| match c {
        Change::SetQuota {
            item, new, enabled, ..
        } if item.name == name => Some((*new, *enabled)),
        _ => None,
    })
}

fn prepaid_contract() -> Vec<AgreementWithLines> {
    vec![contract(
        "k1",
        false,
        vec![line("cs-stor", "k1", "stor", 100.0)],
    )]
}

#[test]
fn r_two_1_service_enabled_on_the_platform_is_added_to_the_prepaid_contract_with_its_quota() {
    let items = [
        item("workstations", None, true, Quota::hard(5.0), 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&[]), &prepaid_contract(), &items);
    assert_eq!(
        adds(&plan),
        vec![("k1".into(), "ws".into(), 5.0, "R-TWO-1")],
        "{plan:#?}"
    );
    // The quota stays as the person set it (it now follows the new line).
    assert_eq!(quota_of(&plan, "workstations"), None, "{plan:#?}");
    assert!(plan.problem.is_none());
}

#[test]
fn r_two_1_on_a_payg_contract_the_service_is_added_with_0_units_and_runs_unlimited() {
    let agreements = vec![contract(
        "k1",
        true,
        vec![line("cs-stor", "k1", "stor", 0.0)],
    )];
    let items = [
        item("workstations", None, true, Quota::hard(5.0), 11),
        item("storage", Some("cloud"), true, Quota::UNLIMITED, 9),
    ];
    let plan = run(&partner(true), &record(&[]), &agreements, &items);
    assert_eq!(
        adds(&plan),
        vec![("k1".into(), "ws".into(), 0.0, "R-TWO-1")]
    );
    assert_eq!(
        quota_of(&plan, "workstations"),
        Some((Quota::UNLIMITED, true))
    );
}

#[test]
fn r_two_1_an_unlimited_service_on_a_prepaid_contract_is_reported_and_left_alone() {
    let items = [
        item("workstations", None, true, Quota::UNLIMITED, 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&[]), &prepaid_contract(), &items);
    assert!(adds(&plan).is_empty());
    assert_eq!(quota_of(&plan, "workstations"), None, "held, not set back");
    let why = plan.problem.unwrap();
    assert!(
        why.contains("enabled without a limit but contract k1 is prepaid"),
        "{why}"
    );
}

#[test]
fn r_two_1_only_changes_after_our_last_write_count_and_the_first_sync_follows_the_psa() {
    // Enabled at 09:00, before our write at 10:00: ours to set back (R-PROV-6).
    let items = [
        item("workstations", None, true, Quota::hard(5.0), 9),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&[]), &prepaid_contract(), &items);
    assert!(adds(&plan).is_empty());
    assert_eq!(quota_of(&plan, "workstations"), Some((Quota::ZERO, false)));
    // A company never synced before follows the PSA.
    let first = CompanyRecord::new("c1", "Customer", Mapping::Tenant("t1".into()));
    let items = [
        item("workstations", None, true, Quota::hard(5.0), 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &first, &prepaid_contract(), &items);
    assert!(adds(&plan).is_empty());
    // With the switch off the platform change is set back.
    let plan = run(&partner(false), &record(&[]), &prepaid_contract(), &items);
    assert!(adds(&plan).is_empty());
    assert_eq!(quota_of(&plan, "workstations"), Some((Quota::ZERO, false)));
}

#[test]
fn r_two_1_service_disabled_on_the_platform_is_removed_and_stays_removed() {
    let agreements = k1(false, &[("cs-stor", "stor", 100.0), ("cs-ws", "ws", 5.0)]);
    let items = [
        item("workstations", None, false, Quota::hard(5.0), 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&[]), &agreements, &items);
    assert_eq!(sets(&plan), vec![("cs-ws".into(), 5.0, 0.0, "R-TWO-1")]);
    assert_eq!(quota_of(&plan, "workstations"), None, "not turned back on");
    let rec = plan.record.unwrap();
    assert_eq!(rec.removed_lines, vec!["cs-ws".to_string()]);

    // Next run: the line is at 0 and counts for nothing, even for a PAYG contract.
    let agreements = k1(true, &[("cs-stor", "stor", 0.0), ("cs-ws", "ws", 0.0)]);
    let items = [
        item("workstations", None, false, Quota::hard(5.0), 9),
        item("storage", Some("cloud"), true, Quota::UNLIMITED, 9),
    ];
    let plan = run(&partner(true), &rec, &agreements, &items);
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(
        plan.record.unwrap().removed_lines,
        vec!["cs-ws".to_string()]
    );

    // Raised again in the PSA, it counts again.
    let agreements = k1(false, &[("cs-stor", "stor", 100.0), ("cs-ws", "ws", 3.0)]);
    let plan = run(&partner(true), &rec, &agreements, &items);
    assert_eq!(
        quota_of(&plan, "workstations"),
        Some((Quota::hard(3.0), true))
    );
    assert!(plan.record.unwrap().removed_lines.is_empty());
}

#[test]
fn r_two_1_a_removed_service_turned_on_again_gets_its_line_back() {
    let agreements = k1(false, &[("cs-stor", "stor", 100.0), ("cs-ws", "ws", 0.0)]);
    let items = [
        item("workstations", None, true, Quota::hard(7.0), 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&["cs-ws"]), &agreements, &items);
    assert!(adds(&plan).is_empty(), "no second service: {plan:#?}");
    assert_eq!(sets(&plan), vec![("cs-ws".into(), 0.0, 7.0, "R-TWO-1")]);
    assert!(plan.record.unwrap().removed_lines.is_empty());
}

#[test]
fn r_two_1_no_contract_to_choose_is_reported_not_guessed() {
    let agreements = vec![contract("k1", false, vec![]), contract("k2", false, vec![])];
    let items = [item("workstations", None, true, Quota::hard(5.0), 11)];
    let plan = run(&partner(true), &record(&[]), &agreements, &items);
    assert!(adds(&plan).is_empty());
    let why = plan.problem.unwrap();
    assert!(
        why.contains("2 active contracts and none holds a mapped service"),
        "{why}"
    );
    // With one active contract it is that one.
    let plan = run(
        &partner(true),
        &record(&[]),
        &[contract("k9", false, vec![])],
        &items,
    );
    assert_eq!(
        adds(&plan),
        vec![("k9".into(), "ws".into(), 5.0, "R-TWO-1")]
    );
}

#[test]
fn r_two_2_azure_storages_1_to_n_enable_one_product_and_disabling_all_removes_it() {
    // Seed 004 scenario 3, row 1: Azure 1..n enabled -> a single Azure product.
    let items = [
        storage_on(),
        item("storage", Some("az1"), true, Quota::UNLIMITED, 9),
        item("storage", Some("az2"), true, Quota::UNLIMITED, 9),
    ];
    let plan = run(&partner(true), &record(&[]), &prepaid_contract(), &items);
    assert_eq!(
        adds(&plan),
        vec![("k1".into(), "azure".into(), 1.0, "R-TWO-2")]
    );
    // The vendors' storages are never provisioned (no quota change for them).
    assert!(plan.changes.iter().all(|c| !matches!(c,
        Change::SetQuota { item, .. } if item.infra_id.as_deref() != Some("cloud"))));

    // One of them disabled: the product stays.
    let with_azure = k1(
        false,
        &[("cs-stor", "stor", 100.0), ("cs-az", "azure", 1.0)],
    );
    let items = [
        storage_on(),
        item("storage", Some("az1"), false, Quota::UNLIMITED, 11),
        item("storage", Some("az2"), true, Quota::UNLIMITED, 9),
    ];
    let plan = run(&partner(true), &record(&[]), &with_azure, &items);
    assert!(plan.changes.is_empty(), "{plan:#?}");

    // All disabled: removed. Amazon S3 without storages has nothing to remove.
    let items = [
        storage_on(),
        item("storage", Some("az1"), false, Quota::UNLIMITED, 11),
        item("storage", Some("az2"), false, Quota::UNLIMITED, 11),
    ];
    let plan = run(&partner(true), &record(&[]), &with_azure, &items);
    assert_eq!(sets(&plan), vec![("cs-az".into(), 1.0, 0.0, "R-TWO-2")]);
}

#[test]
fn r_two_2_platform_storage_next_to_azure_is_independent() {
    // Seed 004 scenario 3: Acronis storage and Azure used in parallel; disabling the platform's
    // own storage removes its product, the Azure product stays.
    let agreements = k1(
        false,
        &[("cs-stor", "stor", 100.0), ("cs-az", "azure", 1.0)],
    );
    let items = [
        item(
            "storage",
            Some("cloud"),
            false,
            Quota::hard(100.0 * STORAGE_UNIT_BYTES),
            11,
        ),
        item("storage", Some("az1"), true, Quota::UNLIMITED, 9),
    ];
    let plan = run(&partner(true), &record(&[]), &agreements, &items);
    assert_eq!(sets(&plan), vec![("cs-stor".into(), 100.0, 0.0, "R-TWO-1")]);
    assert!(adds(&plan).is_empty());
    // Not assigned again as the default storage (R-PROV-5) in this run or the next.
    assert_eq!(quota_of(&plan, "storage"), None, "{plan:#?}");
    let rec = plan.record.unwrap();
    let agreements = k1(false, &[("cs-stor", "stor", 0.0), ("cs-az", "azure", 1.0)]);
    let plan = run(&partner(true), &rec, &agreements, &items);
    assert!(plan.changes.is_empty(), "{plan:#?}");
}

#[test]
fn r_two_1_a_change_the_psa_already_holds_is_settled_at_once() {
    // Disabled by a person at 11:00 while the PSA holds 0 units already: nothing to write, and
    // the change is ours from now on (a later PSA raise wins).
    let agreements = k1(false, &[("cs-stor", "stor", 100.0), ("cs-ws", "ws", 0.0)]);
    let items = [
        item("workstations", None, false, Quota::hard(5.0), 11),
        storage_on(),
    ];
    let plan = run(&partner(true), &record(&[]), &agreements, &items);
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(plan.record.unwrap().platform_written, Some(t(11)));
}

#[test]
fn r_two_1_the_first_look_at_a_tenant_sets_the_baseline_and_follows_the_psa() {
    let first = CompanyRecord {
        last_sync: Some(t(8)),
        ..CompanyRecord::new("c1", "Customer", Mapping::Tenant("t1".into()))
    };
    let items = [
        item("workstations", None, true, Quota::hard(5.0), 11),
        storage_on(),
        item("storage", Some("az1"), false, Quota::UNLIMITED, 9),
    ];
    let with_azure = k1(
        false,
        &[("cs-stor", "stor", 100.0), ("cs-az", "azure", 1.0)],
    );
    let plan = run(&partner(true), &first, &with_azure, &items);
    assert!(
        adds(&plan).is_empty() && sets(&plan).is_empty(),
        "{plan:#?}"
    );
    assert_eq!(
        quota_of(&plan, "workstations"),
        Some((Quota::ZERO, false)),
        "PSA wins"
    );
    assert_eq!(plan.record.unwrap().platform_written, Some(t(11)));
    // A new mapping forgets what belonged to the previous tenant.
    let mut rec = record(&["cs-ws"]);
    rec.map_to(Mapping::Tenant("t2".into()));
    assert_eq!((rec.platform_written, rec.removed_lines.len()), (None, 0));
    let mut same = record(&["cs-ws"]);
    same.map_to(Mapping::Tenant("t1".into()));
    assert_eq!(same.platform_written, Some(t(10)));
}

#[test]
fn r_two_1_a_held_change_stays_a_persons_whatever_else_is_written() {
    // Workstations turned on unlimited at 11:00 on a prepaid contract: held. Storage turned off
    // at 12:00: carried. Our record of the platform must stay before 11:00.
    let items = [
        item("workstations", None, true, Quota::UNLIMITED, 11),
        item(
            "storage",
            Some("cloud"),
            false,
            Quota::hard(100.0 * STORAGE_UNIT_BYTES),
            12,
        ),
    ];
    let plan = run(&partner(true), &record(&[]), &prepaid_contract(), &items);
    assert_eq!(sets(&plan), vec![("cs-stor".into(), 100.0, 0.0, "R-TWO-1")]);
    assert_eq!(plan.hold_from, Some(t(11)));
    assert_eq!(plan.platform_seen, Some(t(12)));
    let after_apply = settled_before(plan.platform_seen.max(Some(t(13))), plan.hold_from);
    assert!(after_apply < Some(t(11)), "{after_apply:?}");
}
