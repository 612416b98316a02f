//! SPEC §2 — Product mapping (R-MAP).

use crate::model::{ItemMapping, ProductMapping, ProductRef};
use std::collections::BTreeSet;

/// R-MAP-1, R-MAP-2: the mapping's own shape — each offering item (per storage location) at
/// most once, the default storage is one of the mapped storage locations, a storage location
/// is given for every storage item.
pub fn check_shape(m: &ProductMapping) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for i in &m.items {
        if i.item.name.trim().is_empty() {
            errors.push("an offering item has an empty name".to_owned());
        }
        if !seen.insert(&i.item) {
            errors.push(format!(
                "offering item {} is mapped more than once; each item maps to at most one product (R-MAP-1)",
                i.item
            ));
        }
    }
    match &m.default_storage {
        Some(d) => {
            if !m
                .items
                .iter()
                .any(|i| i.item.infra_id.as_deref() == Some(d.as_str()))
            {
                errors.push(format!(
                    "the default storage {d} is not one of the mapped storage locations (R-MAP-2)"
                ));
            }
        }
        None => {
            if m.items.iter().any(|i| i.item.is_storage()) {
                errors.push(
                    "storage locations are mapped but none is the default storage (R-MAP-2)"
                        .to_owned(),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// R-MAP-5: every product named by the mapping exists in the PSA catalogue.
/// `catalog` is the PSA's products; returns the items whose product is unknown.
pub fn unknown_products<'a>(m: &'a ProductMapping, catalog: &[ProductRef]) -> Vec<&'a ItemMapping> {
    m.items
        .iter()
        .filter(|i| {
            i.product
                .as_ref()
                .is_some_and(|p| !catalog.iter().any(|c| c.id == p.id))
        })
        .collect()
}

/// R-MAP-6: a mapping is usable only when at least one item has a product or is free, and the
/// default storage has a product or is free. Otherwise sync does not run for the partner (it
/// never zeroes quotas because of an empty mapping); the error says why.
pub fn usable(m: &ProductMapping) -> Result<(), String> {
    let counts = |i: &&ItemMapping| i.product.is_some() || i.free;
    if !m.items.iter().any(|i| counts(&i)) {
        return Err(
            "the product mapping is not usable: no offering item has a product or is free (R-MAP-6)"
                .to_owned(),
        );
    }
    let Some(default) = &m.default_storage else {
        return Err(
            "the product mapping is not usable: no default storage is mapped (R-MAP-6)".to_owned(),
        );
    };
    let ds = m
        .items
        .iter()
        .find(|i| i.item.infra_id.as_deref() == Some(default.as_str()));
    if !ds.is_some_and(|i| counts(&i)) {
        return Err(format!(
            "the product mapping is not usable: the default storage {default} has no product and is not free (R-MAP-6)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ItemKey;

    fn item(name: &str, infra: Option<&str>, product: Option<&str>, free: bool) -> ItemMapping {
        ItemMapping {
            item: ItemKey::new(name, infra),
            product: product.map(|p| ProductRef {
                id: p.into(),
                identifier: format!("P-{p}"),
            }),
            free,
            usage: Default::default(),
        }
    }

    fn mapping(items: Vec<ItemMapping>, default: Option<&str>) -> ProductMapping {
        ProductMapping {
            items,
            default_storage: default.map(Into::into),
            public_cloud: vec![],
        }
    }

    #[test]
    fn r_map_1_an_item_maps_to_at_most_one_product() {
        let m = mapping(
            vec![
                item("workstations", None, Some("1"), false),
                item("workstations", None, Some("2"), false),
            ],
            None,
        );
        let errs = check_shape(&m).unwrap_err();
        assert!(
            errs[0].contains("workstations is mapped more than once"),
            "{errs:?}"
        );
    }

    #[test]
    fn r_map_2_storage_per_location_with_one_default() {
        let rows: [(&str, ProductMapping, bool); 4] = [
            (
                "two locations, default is one of them",
                mapping(
                    vec![
                        item("storage", Some("loc-a"), Some("1"), false),
                        item("storage", Some("loc-b"), Some("2"), false),
                    ],
                    Some("loc-a"),
                ),
                true,
            ),
            (
                "same location twice",
                mapping(
                    vec![
                        item("storage", Some("loc-a"), Some("1"), false),
                        item("storage", Some("loc-a"), Some("2"), false),
                    ],
                    Some("loc-a"),
                ),
                false,
            ),
            (
                "default not mapped",
                mapping(
                    vec![item("storage", Some("loc-a"), Some("1"), false)],
                    Some("loc-z"),
                ),
                false,
            ),
            (
                "storage without default",
                mapping(vec![item("storage", Some("loc-a"), Some("1"), false)], None),
                false,
            ),
        ];
        for (case, m, ok) in rows {
            assert_eq!(check_shape(&m).is_ok(), ok, "{case}: {:?}", check_shape(&m));
        }
    }

    #[test]
    fn r_map_5_product_missing_from_the_psa_is_named() {
        let m = mapping(
            vec![
                item("workstations", None, Some("10"), false),
                item("servers", None, Some("99"), false),
            ],
            None,
        );
        let catalog = vec![ProductRef {
            id: "10".into(),
            identifier: "WS".into(),
        }];
        let bad = unknown_products(&m, &catalog);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].item.name, "servers");
    }

    #[test]
    fn r_map_6_usable_only_with_a_product_or_free_and_a_default_storage() {
        let rows: [(&str, ProductMapping, Option<&str>); 4] = [
            (
                "product + default storage free",
                mapping(
                    vec![
                        item("workstations", None, Some("1"), false),
                        item("storage", Some("loc"), None, true),
                    ],
                    Some("loc"),
                ),
                None,
            ),
            (
                "nothing mapped",
                mapping(
                    vec![
                        item("workstations", None, None, false),
                        item("storage", Some("loc"), None, false),
                    ],
                    Some("loc"),
                ),
                Some("no offering item"),
            ),
            (
                "default storage neither mapped nor free",
                mapping(
                    vec![
                        item("workstations", None, Some("1"), false),
                        item("storage", Some("loc"), None, false),
                    ],
                    Some("loc"),
                ),
                Some("default storage loc has no product"),
            ),
            (
                "no default storage",
                mapping(vec![item("workstations", None, Some("1"), false)], None),
                Some("no default storage"),
            ),
        ];
        for (case, m, want) in rows {
            match (usable(&m), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{case}: {e}"),
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }
}
