//! One unit rule between PSA quantities and platform values, used by quotas (sync, two-way
//! sync) and by published usage (R-USE-2) alike.
//!
//! A PSA storage line counts gibibytes ([`STORAGE_UNIT_BYTES`]); the platform counts storage
//! in bytes. Workloads count the same on both sides. A platform value becomes a PSA quantity
//! rounded **up** to a whole unit (10.2 GiB used is 11 on the line, one byte is 1: usage is
//! never billed short), after forgiving floating-point noise (a relative 1e-12).

use crate::model::ItemKey;

/// Bytes per PSA quantity unit for storage items: PSA storage lines count gigabytes (GiB).
pub const STORAGE_UNIT_BYTES: f64 = 1_073_741_824.0;

/// Relative noise forgiven before rounding up: 10 GiB computed a hair over 10 GiB stays 10.
const NOISE: f64 = 1e-12;

/// R-PROV-4 / R-USE-2: the platform value of a PSA quantity (a prepaid quota).
pub fn platform_value(item: &ItemKey, quantity: f64) -> f64 {
    if item.is_storage() {
        quantity * STORAGE_UNIT_BYTES
    } else {
        quantity
    }
}

/// R-USE-2 / R-TWO-1: the PSA quantity of a platform value (usage, a quota): storage bytes
/// become GiB; both are rounded up to a whole unit. Never negative.
pub fn psa_quantity(item: &ItemKey, value: f64) -> f64 {
    let units = if item.is_storage() {
        value / STORAGE_UNIT_BYTES
    } else {
        value
    };
    let whole = units.round();
    let q = if (units - whole).abs() <= NOISE * units.abs().max(1.0) {
        whole
    } else {
        units.ceil()
    };
    q.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_use_2_storage_bytes_become_whole_gibibytes_rounded_up() {
        let storage = ItemKey::new("storage", Some("infra-1"));
        let seats = ItemKey::new("workstations", None);
        for (item, value, want) in [
            (&storage, 60.0 * STORAGE_UNIT_BYTES, 60.0),
            (&storage, 10.2 * STORAGE_UNIT_BYTES, 11.0),
            (&storage, 1.0, 1.0),
            (&storage, 0.0, 0.0),
            (&storage, 10.0 * STORAGE_UNIT_BYTES * (1.0 + 1e-14), 10.0),
            (&seats, 7.0, 7.0),
            (&seats, 7.000_000_000_000_01, 7.0),
            (&seats, 7.000_000_1, 8.0),
            (&seats, 6.5, 7.0),
            (&seats, -3.0, 0.0),
        ] {
            assert_eq!(psa_quantity(item, value), want, "{item} {value}");
        }
    }

    #[test]
    fn r_prov_4_a_quantity_and_its_platform_value_round_trip() {
        let storage = ItemKey::new("storage", Some("infra-1"));
        for q in [0.0, 1.0, 50.0, 1024.0] {
            assert_eq!(psa_quantity(&storage, platform_value(&storage, q)), q);
        }
    }
}
