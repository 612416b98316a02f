//! Unit tests of the fake Autotask's internals (field tables, path canonicalisation, periods).

use chrono::NaiveDate;
use serde::Serialize;

use super::{
    entities::Entity,
    records::{
        at_midnight, AtBillingCode, AtCompany, AtContact, AtContract, AtContractService,
        AtContractServiceAdjustment, AtContractServiceUnit, AtService, AtTicket,
    },
    routes::canonical_path,
    state::AtState,
};

fn keys<T: Serialize + Default>() -> Vec<String> {
    let v = serde_json::to_value(T::default()).unwrap();
    v.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "userDefinedFields")
        .cloned()
        .collect()
}

#[test]
fn field_tables_match_records() {
    let check = |e: Entity, mut ks: Vec<String>| {
        let mut names: Vec<String> = e.fields().iter().map(|f| f.name.to_string()).collect();
        ks.sort();
        names.sort();
        assert_eq!(ks, names, "{}", e.name());
    };
    check(Entity::Companies, keys::<AtCompany>());
    check(Entity::Contacts, keys::<AtContact>());
    check(Entity::Contracts, keys::<AtContract>());
    check(Entity::ContractServices, keys::<AtContractService>());
    check(
        Entity::ContractServiceUnits,
        keys::<AtContractServiceUnit>(),
    );
    check(
        Entity::ContractServiceAdjustments,
        keys::<AtContractServiceAdjustment>(),
    );
    check(Entity::Services, keys::<AtService>());
    check(Entity::BillingCodes, keys::<AtBillingCode>());
    check(Entity::Tickets, keys::<AtTicket>());
}

#[test]
fn canonical_paths() {
    assert_eq!(
        canonical_path("/atservicesrest/v1.0/zoneInformation").as_deref(),
        Some("/ATServicesRest/V1.0/ZoneInformation")
    );
    assert_eq!(
        canonical_path("/atservicesrest/v1.0/contracts/12/SERVICES").as_deref(),
        Some("/ATServicesRest/V1.0/Contracts/12/Services")
    );
    assert_eq!(canonical_path("/ATServicesRest/V1.0/Companies/query"), None);
    assert_eq!(canonical_path("/_sandbox/stats"), None);
    assert_eq!(
        canonical_path("/atservicesrest/versioninformation").as_deref(),
        Some("/ATServicesRest/VersionInformation")
    );
}

#[test]
fn periods_follow_the_contract_start() {
    let mut st = AtState::new();
    let c = AtContract {
        start_date: at_midnight(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()),
        end_date: at_midnight(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
        contract_period_type: 1,
        ..Default::default()
    };
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert_eq!(st.period(&c, 0), Some((d(1, 15), d(2, 14))));
    assert_eq!(st.period(&c, 11), Some((d(12, 15), d(12, 31))));
    assert_eq!(st.period(&c, 12), None);
    assert_eq!(st.period_index(&c, d(2, 14)), 0);
    assert_eq!(st.period_index(&c, d(2, 15)), 1);
    assert_eq!(st.period_index(&c, d(12, 20)), 11);
    let q = st.pick_lookup(Entity::Contracts, "contractPeriodType", "Quarterly");
    let cq = AtContract {
        contract_period_type: q,
        ..c
    };
    assert_eq!(st.period(&cq, 1), Some((d(4, 15), d(7, 14))));
}
