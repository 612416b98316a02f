use super::*;
use crate::model::{ItemMapping, ProductRef, StorageUsageProducts};
use crate::ports::UsageFigure;
use crate::rules::units::STORAGE_UNIT_BYTES as GIB;

const INFRA: &str = "infra-xyz";

fn product(id: &str) -> Option<ProductRef> {
    Some(ProductRef {
        id: id.into(),
        identifier: format!("ACR-{id}"),
    })
}

fn storage() -> ItemKey {
    ItemKey::new("storage", Some(INFRA))
}

fn seats() -> ItemKey {
    ItemKey::new("workstations", None)
}

/// Seed 004, scenario 1 and 2: a location with quota-and-total, class 1, class 2 and
/// geo-redundant products; workstations with their own product.
fn mapping() -> ProductMapping {
    ProductMapping {
        items: vec![
            ItemMapping {
                item: storage(),
                product: product("total"),
                free: true,
                usage: StorageUsageProducts {
                    class1: product("free"),
                    class2: product("billed"),
                    geo: product("geo"),
                },
            },
            ItemMapping {
                item: seats(),
                product: product("ws"),
                free: false,
                usage: StorageUsageProducts::default(),
            },
        ],
        default_storage: Some(INFRA.into()),
        public_cloud: vec![],
    }
}

fn line(agreement: &str, id: &str, product: &str, kind: LineKind, quantity: f64) -> ActiveLine {
    ActiveLine {
        line_id: id.into(),
        agreement_id: agreement.into(),
        product_id: product.into(),
        kind,
        quantity,
    }
}

fn usage(tenant: &str, figures: &[(ItemKey, Measure, f64)]) -> TenantUsage {
    TenantUsage {
        tenant_id: tenant.into(),
        figures: figures
            .iter()
            .map(|(item, measure, value)| UsageFigure {
                item: item.clone(),
                measure: *measure,
                value: *value,
            })
            .collect(),
    }
}

fn targets(out: &[LineUsage]) -> Vec<(&str, LineAction)> {
    out.iter()
        .map(|l| (l.line_id.as_str(), l.action.clone()))
        .collect()
}

fn set(old: f64, new: f64) -> LineAction {
    LineAction::Set { old, new }
}

#[test]
fn r_use_2_the_seed_004_sample_class_1_gets_10_and_class_2_gets_50() {
    // 60 GB used, 50 GB of it class 2 and 10 GB class 1; PAYG class 1 and class 2 lines at 0.
    let figures = figures([&usage(
        "t1",
        &[
            (storage(), Measure::Standard, 60.0 * GIB),
            (storage(), Measure::Class1, 10.0 * GIB),
            (storage(), Measure::Class2, 50.0 * GIB),
        ],
    )]);
    let lines = [
        line("a1", "l-free", "free", LineKind::Payg, 0.0),
        line("a1", "l-billed", "billed", LineKind::Payg, 0.0),
    ];
    let out = line_usage(&mapping(), &lines, &figures, &[]);
    assert_eq!(
        targets(&out),
        vec![("l-billed", set(0.0, 50.0)), ("l-free", set(0.0, 10.0))]
    );
    assert!(out.iter().all(|l| l.rule == "R-USE-2"));
}

#[test]
fn r_use_2_r_map_3_total_is_standard_plus_geo_redundant_and_geo_has_its_own_line() {
    let figures = figures([&usage(
        "t1",
        &[
            (storage(), Measure::Standard, 40.0 * GIB),
            (storage(), Measure::Geo, 5.5 * GIB),
        ],
    )]);
    let lines = [
        line("a1", "l-total", "total", LineKind::Payg, 3.0),
        line("a1", "l-geo", "geo", LineKind::Payg, 0.0),
    ];
    let out = line_usage(&mapping(), &lines, &figures, &[]);
    // 45.5 GiB rounds up to 46 (the one unit rule); geo 5.5 → 6.
    assert_eq!(
        targets(&out),
        vec![("l-geo", set(0.0, 6.0)), ("l-total", set(3.0, 46.0))]
    );
    assert_eq!(out[1].role, StorageRole::Total);
}

#[test]
fn r_use_1_r_prov_4_prepaid_lines_are_untouched_and_combined_lines_publish_to_the_payg_line() {
    let figures = figures([&usage("t1", &[(seats(), Measure::Standard, 12.0)])]);
    // Prepaid only: untouched.
    let out = line_usage(
        &mapping(),
        &[line("a1", "pre", "ws", LineKind::Prepaid, 10.0)],
        &figures,
        &[],
    );
    assert!(matches!(out[0].action, LineAction::Untouched { .. }));
    assert_eq!(out[0].rule, "R-PROV-4");
    assert_eq!(out[0].write(), None);
    // Prepaid 10 + PAYG: the PAYG line gets the whole 12 ("less included" bills 2).
    let out = line_usage(
        &mapping(),
        &[
            line("a1", "pre", "ws", LineKind::Prepaid, 10.0),
            line("a1", "payg", "ws", LineKind::Payg, 4.0),
        ],
        &figures,
        &[],
    );
    assert_eq!(out[0].write(), Some((4.0, 12.0)));
    assert_eq!(out[0].line_id, "payg");
    assert!(matches!(out[1].action, LineAction::Untouched { .. }));
}

#[test]
fn r_use_1_one_products_usage_goes_to_one_payg_line_only() {
    let figures = figures([&usage("t1", &[(seats(), Measure::Standard, 5.0)])]);
    let out = line_usage(
        &mapping(),
        &[
            line("a2", "x", "ws", LineKind::Payg, 0.0),
            line("a1", "y", "ws", LineKind::Payg, 0.0),
        ],
        &figures,
        &[],
    );
    assert_eq!(out[0].line_id, "y", "the first agreement carries it");
    assert_eq!(out[0].write(), Some((0.0, 5.0)));
    assert!(
        matches!(&out[1].action, LineAction::Untouched { reason } if reason.contains("another PAYG line"))
    );
}

#[test]
fn r_use_1_lines_of_unmapped_products_are_not_touched_and_absent_usage_reads_as_zero() {
    let out = line_usage(
        &mapping(),
        &[
            line("a1", "other", "not-mapped", LineKind::Payg, 9.0),
            line("a1", "ws", "ws", LineKind::Payg, 9.0),
        ],
        &Figures::new(),
        &[],
    );
    assert_eq!(targets(&out), vec![("ws", set(9.0, 0.0))]);
}

#[test]
fn r_use_1_publishing_the_same_figures_again_writes_nothing() {
    let figures = figures([&usage("t1", &[(seats(), Measure::Standard, 5.0)])]);
    let out = line_usage(
        &mapping(),
        &[line("a1", "ws", "ws", LineKind::Payg, 5.0)],
        &figures,
        &[],
    );
    assert_eq!(targets(&out), vec![("ws", set(5.0, 5.0))]);
    assert_eq!(out[0].write(), None);
}

#[test]
fn r_use_3_a_sub_partners_usage_is_the_sum_over_its_subtree() {
    let subtree = [
        usage("c1", &[(seats(), Measure::Standard, 3.0)]),
        usage(
            "c2",
            &[
                (seats(), Measure::Standard, 4.0),
                (storage(), Measure::Standard, 1.5 * GIB),
            ],
        ),
        usage("c3", &[(storage(), Measure::Standard, 2.0 * GIB)]),
    ];
    let figures = figures(&subtree);
    let out = line_usage(
        &mapping(),
        &[
            line("a1", "ws", "ws", LineKind::Payg, 0.0),
            line("a1", "st", "total", LineKind::Payg, 0.0),
        ],
        &figures,
        &[],
    );
    assert_eq!(
        targets(&out),
        vec![("st", set(0.0, 4.0)), ("ws", set(0.0, 7.0))]
    );
}

#[test]
fn r_use_1_r_two_1_lines_two_way_sync_removed_are_skipped() {
    let figures = figures([&usage("t1", &[(seats(), Measure::Standard, 5.0)])]);
    let out = line_usage(
        &mapping(),
        &[line("a1", "gone", "ws", LineKind::Payg, 0.0)],
        &figures,
        &["gone".to_string()],
    );
    assert_eq!(out[0].rule, "R-TWO-1");
    assert_eq!(out[0].write(), None);
}

#[test]
fn r_use_3_a_sub_partner_is_billed_for_the_customers_not_billed_elsewhere() {
    let t = |id: &str, parent: &str, kind: TenantKind| SubtreeTenant {
        id: id.into(),
        parent_id: Some(parent.into()),
        kind,
    };
    // A ─┬─ c1
    //    ├─ c2 (mapped to its own company)
    //    ├─ folder ─ c3
    //    └─ B (a mapped sub-partner) ─ c4
    //       C (an unmapped sub-partner) ─ c5
    let subtree = [
        t("c1", "A", TenantKind::Customer),
        t("c2", "A", TenantKind::Customer),
        t("folder", "A", TenantKind::Other),
        t("c3", "folder", TenantKind::Customer),
        t("B", "A", TenantKind::Partner),
        t("c4", "B", TenantKind::Customer),
        t("C", "A", TenantKind::Partner),
        t("c5", "C", TenantKind::Customer),
        // A broken listing: a parent that is not in it.
        t("c6", "elsewhere", TenantKind::Customer),
    ];
    let mapped: BTreeSet<String> = ["A", "c2", "B"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        billed_customers("A", &subtree, &mapped),
        vec!["c1", "c3", "c5"]
    );
    // B's own bill: c4.
    assert_eq!(billed_customers("B", &subtree, &mapped), vec!["c4"]);
    // A cycle in a bad listing ends.
    let cycle = [
        t("x", "y", TenantKind::Customer),
        t("y", "x", TenantKind::Partner),
    ];
    assert!(billed_customers("A", &cycle, &mapped).is_empty());
}
