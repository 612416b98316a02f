//! Partner-file parsing and resolution, table by table.
use super::*;

const FILE: &str = r#"
id: acme
name: Acme MSP
psa: connectwise
platform: { url: "https://eu2-cloud.acronis.com" }
time_zone: Europe/Berlin
provisioning: { auto_create: true, mode: trial }
products:
  - { item: workstations, product: ACR-WS }
  - { item: mailboxes, free: true }
  - { item: storage, location: Cloud storage, product: ACR-STOR, default: true }
companies:
  - { company: "ACME-CUST", tenant: new }
"#;

fn product(id: &str, identifier: &str) -> ProductRef {
    ProductRef {
        id: id.into(),
        identifier: identifier.into(),
    }
}

fn catalog() -> Catalog {
    Catalog {
        products: vec![
            product("11", "ACR-WS"),
            product("12", "ACR-STOR"),
            product("13", "ACR-STOR-FREE"),
            product("14", "ACR-STOR-BILLED"),
            product("15", "ACR-AZURE"),
        ],
        allocation_codes: vec![product("900", "Cloud services")],
        locations: vec![
            StorageLocation {
                infra_id: "infra-1".into(),
                name: "Cloud storage".into(),
                backend: Some("acronis".into()),
            },
            StorageLocation {
                infra_id: "infra-az".into(),
                name: "Azure West".into(),
                backend: Some("azure".into()),
            },
        ],
        // The platform fake's catalogue (tests/sandbox COUNT_ITEMS) plus storage.
        offering_items: [
            "workstations",
            "servers",
            "vms",
            "mobiles",
            "web_hosting_servers",
            "mailboxes",
            "gsuite_seats",
            "storage",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[test]
fn r_set_1_partner_file_resolves_to_settings_and_mapping() {
    let spec = parse(FILE).unwrap();
    let p = resolve(&spec, "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.mapping.default_storage.as_deref(), Some("infra-1"));
    assert_eq!(p.mapping.items[0].product.as_ref().unwrap().id, "11");
    assert!(p.mapping.items[1].free);
    assert!(p.provisioning.auto_create);
    assert_eq!(spec.companies[0].request(), MappingRequest::New);
}

#[test]
fn r_map_5_unknown_product_and_location_are_named_and_nothing_resolves() {
    let bad = FILE
        .replace("ACR-WS }", "ACR-NOPE }")
        .replace("Cloud storage", "Mars");
    let spec = parse(&bad).unwrap();
    let errs = resolve(&spec, "ptid", &catalog(), 0).unwrap_err();
    let all = errs.join("\n");
    assert!(all.contains("product \"ACR-NOPE\" does not exist"), "{all}");
    assert!(all.contains("storage location \"Mars\""), "{all}");
}

#[test]
fn r_set_1_malformed_partner_file_names_the_field() {
    let err =
        parse("id: acme\npsa: connectwise\nplatform: {url: x}\nswitches: {provisionning: true}\n")
            .unwrap_err();
    assert!(err.contains("provisionning"), "{err}");
    let err = parse("id: acme\npsa: halo\nplatform: {url: x}\n").unwrap_err();
    assert!(err.contains("halo"), "{err}");
    let spec =
        parse("id: Acme!\npsa: connectwise\nplatform: {url: 'http://x'}\ntime_zone: Mars/Base\n")
            .unwrap();
    let errs = resolve(&spec, "t", &Catalog::default(), 0)
        .unwrap_err()
        .join("\n");
    assert!(errs.contains("partner id"), "{errs}");
    assert!(errs.contains("https"), "{errs}");
    assert!(errs.contains("Mars/Base"), "{errs}");
}

#[test]
fn r_map_3_storage_location_takes_class1_class2_and_geo_products() {
    let file = FILE.replace(
        "product: ACR-STOR, default: true }",
        "product: ACR-STOR, class1: ACR-STOR-FREE, class2: ACR-STOR-BILLED, default: true }",
    );
    let p = resolve(&parse(&file).unwrap(), "ptid", &catalog(), 0).unwrap();
    let st = &p.mapping.items[2];
    assert_eq!(st.usage.class1.as_ref().unwrap().id, "13");
    assert_eq!(st.usage.class2.as_ref().unwrap().id, "14");
    assert!(st.usage.geo.is_none());
    assert!(p.mapping.maps_product("14"));
    // Usage products belong to a storage location.
    let bad = FILE.replace(
        "{ item: workstations, product: ACR-WS }",
        "{ item: workstations, product: ACR-WS, class2: ACR-STOR-BILLED }",
    );
    let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("item workstations: class1, class2 and geo"),
        "{errs}"
    );
    let bad = file.replace("class1: ACR-STOR-FREE", "class1: ACR-NOPE");
    let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("item storage class 1 usage: product \"ACR-NOPE\" does not exist"),
        "{errs}"
    );
}

#[test]
fn r_map_4_public_cloud_maps_one_product_per_vendor_not_per_location() {
    let file = format!("{FILE}public_cloud:\n  - {{ vendor: azure, product: ACR-AZURE }}\n");
    let p = resolve(&parse(&file).unwrap(), "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.mapping.public_cloud[0].vendor, CloudVendor::Azure);
    assert_eq!(p.mapping.public_cloud[0].product.id, "15");
    let twice = format!("{file}  - {{ vendor: azure, product: ACR-WS }}\n");
    let errs = resolve(&parse(&twice).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(errs.contains("mapped more than once"), "{errs}");
    let as_location = FILE.replace(
        "- { item: mailboxes, free: true }",
        "- { item: storage, location: Azure West, product: ACR-AZURE }",
    );
    let errs = resolve(&parse(&as_location).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("is a public cloud storage (Microsoft Azure)"),
        "{errs}"
    );
    assert_eq!(
        CloudVendor::from_backend("s3-compatible"),
        Some(CloudVendor::S3Compatible)
    );
    assert_eq!(
        CloudVendor::from_backend("amazon_s3"),
        Some(CloudVendor::AmazonS3)
    );
    assert_eq!(CloudVendor::from_backend("acronis"), None);
}

#[test]
fn r_two_1_two_way_needs_an_existing_allocation_code_and_autotask() {
    let at = FILE.replace("psa: connectwise", "psa: autotask");
    let on = format!("{at}switches: {{ two_way_sync: true }}\n");
    let errs = resolve(&parse(&on).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("two_way (allocation_code, period_type) is missing"),
        "{errs}"
    );
    let good =
        format!("{on}two_way: {{ allocation_code: cloud services, period_type: quarterly }}\n");
    let p = resolve(&parse(&good).unwrap(), "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.two_way.allocation_code.as_ref().unwrap().id, "900");
    assert_eq!(p.two_way.period_type, PeriodType::Quarterly);
    let unknown = good.replace("cloud services", "Nope");
    let errs = resolve(&parse(&unknown).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("allocation_code \"Nope\" does not exist"),
        "{errs}"
    );
    let cw = good.replace("psa: autotask", "psa: connectwise");
    let errs = resolve(&parse(&cw).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("two-way sync is an Autotask feature"),
        "{errs}"
    );
    // Autotask settings on a ConnectWise partner, an empty PAYG field name, `create` without
    // the two-way defaults: each named.
    let cw_field = format!("{FILE}autotask: {{ payg_field: Acronis PAYG }}\n");
    let errs = resolve(&parse(&cw_field).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(errs.contains("settings for Autotask"), "{errs}");
    let empty = format!("{at}autotask: {{ payg_field: \"  \" }}\n");
    let errs = resolve(&parse(&empty).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(errs.contains("payg_field is empty"), "{errs}");
    let create = at.replace("product: ACR-WS }", "product: ACR-NEW, create: true }");
    let errs = resolve(&parse(&create).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("create needs an Autotask partner with two_way"),
        "{errs}"
    );
}

// How partner files are read, pinned when `serde_yaml` was replaced by `serde_norway`: the
// same files parse to the same settings, and the same files are refused.
const BASE: &str = "id: acme\npsa: connectwise\nplatform: { url: \"https://x\" }\n";

#[test]
fn yaml_anchors_and_aliases_are_expanded_as_before() {
    let spec = parse(&format!("{BASE}name: &n Acme\ntime_zone: *n\n")).unwrap();
    assert_eq!(spec.name.as_deref(), Some("Acme"));
    assert_eq!(spec.time_zone, "Acme");
    let spec = parse(&format!(
        "{BASE}products:\n  - &w {{ item: workstations, product: A }}\n  - *w\n"
    ))
    .unwrap();
    assert_eq!(spec.products.len(), 2);
    assert_eq!(spec.products[0], spec.products[1]);
    let err = parse(&format!("{BASE}name: *nowhere\n")).unwrap_err();
    assert!(err.contains("unknown anchor"), "{err}");
}

#[test]
fn yaml_merge_keys_are_refused_as_unknown_fields() {
    let err = parse(&format!(
        "{BASE}products:\n  - &w {{ item: workstations, product: A }}\n  - {{ <<: *w, item: servers }}\n"
    ))
    .unwrap_err();
    assert!(err.contains("products[1]: unknown field `<<`"), "{err}");
}

#[test]
fn yaml_unknown_keys_are_refused_at_every_level_naming_key_and_line() {
    let err = parse(&format!("{BASE}nope: 1\n")).unwrap_err();
    assert!(
        err.contains("unknown field `nope`") && err.contains("line 4"),
        "{err}"
    );
    let err = parse(&format!(
        "{BASE}products:\n  - {{ item: servers, prodcut: A }}\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("products[0]: unknown field `prodcut`"),
        "{err}"
    );
    let err = parse(&format!(
        "{BASE}companies:\n  - {{ company: A, tenant: new, x: 1 }}\n"
    ))
    .unwrap_err();
    assert!(err.contains("companies[0]: unknown field `x`"), "{err}");
    let err = parse("id: a\npsa: connectwise\nplatform: { url: x, region: eu }\n").unwrap_err();
    assert!(err.contains("platform: unknown field `region`"), "{err}");
}

#[test]
fn yaml_duplicate_keys_and_several_documents_are_refused() {
    let err = parse(&format!("{BASE}name: a\nname: b\n")).unwrap_err();
    assert!(err.contains("duplicate field `name`"), "{err}");
    let err = parse(&format!("{BASE}---\n{BASE}")).unwrap_err();
    assert!(err.contains("more than one document"), "{err}");
    assert!(parse("").unwrap_err().contains("missing field `id`"));
    // One document with its start marker is one document.
    assert!(parse(&format!("---\n{BASE}")).is_ok());
}

#[test]
fn yaml_nesting_deeper_than_the_schema_is_refused() {
    let deep = |open: &str, close: &str| {
        format!("{BASE}products: {}{}\n", open.repeat(30), close.repeat(30))
    };
    let err = parse(&deep("[", "]")).unwrap_err();
    assert!(err.contains("products[0]: invalid type: sequence"), "{err}");
    let err = parse(&format!(
        "{BASE}switches: {}{}\n",
        "{a: ".repeat(30),
        "}".repeat(30)
    ))
    .unwrap_err();
    assert!(err.contains("switches: unknown field `a`"), "{err}");
    let err = parse(&format!(
        "{BASE}name: {}x{}\n",
        "[".repeat(30),
        "]".repeat(30)
    ))
    .unwrap_err();
    assert!(err.contains("name: invalid type: sequence"), "{err}");
}

#[test]
fn yaml_scalars_read_as_before_yes_is_a_string_and_0x10_a_number() {
    let err = parse(&format!("{BASE}enabled: yes\n")).unwrap_err();
    assert!(err.contains("expected a boolean"), "{err}");
    assert!(!parse(&format!("{BASE}enabled: False\n")).unwrap().enabled);
    let spec = parse(&format!(
        "{BASE}name: 123\nsync: {{ full_every_hours: 0x10 }}\n"
    ))
    .unwrap();
    assert_eq!(spec.name.as_deref(), Some("123"));
    assert_eq!(spec.sync.full_every_hours, 16);
    assert_eq!(parse(&format!("{BASE}name: ~\n")).unwrap().name, None);
    assert!(parse(&BASE.replace('\n', "\r\n")).is_ok());
    let err = parse(&format!("{BASE}sync:\n\tfull_every_hours: 3\n")).unwrap_err();
    assert!(err.contains("line 5"), "{err}");
}

#[test]
fn partner_file_over_256_kib_is_refused_before_parsing() {
    let mut big = FILE.to_owned();
    while big.len() <= MAX_FILE_BYTES {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let err = parse(&big).unwrap_err();
    assert!(err.contains("more than the 256 KiB"), "{err}");
    // At the limit it is read (comments only add bytes).
    big.truncate(MAX_FILE_BYTES);
    let cut = big.rfind('\n').unwrap() + 1;
    big.truncate(cut);
    assert!(parse(&big).is_ok());
}

#[test]
fn partner_file_nested_deeper_than_32_is_refused_before_parsing_naming_the_line() {
    let deep = format!("{BASE}products: {}\n", "[".repeat(100_000));
    let t = std::time::Instant::now();
    let err = parse(&deep).unwrap_err();
    assert!(
        err.contains("more than 32 levels deep") && err.contains("line 4"),
        "{err}"
    );
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    let err = parse(&format!("{BASE}guard: {}\n", "{a: ".repeat(33))).unwrap_err();
    assert!(err.contains("more than 32 levels deep"), "{err}");
    // Brackets in quoted scalars and comments are text, not nesting; closed ones do not add up.
    let text = format!(
        "{BASE}name: \"{o}\"\ntime_zone: '{o}''{o}'\n# {o}\nproducts: [{{ item: \"a[\", product: 'b{{' }}{p}]\n",
        o = "[".repeat(40),
        p = ", [ ]".repeat(40),
    );
    let err = parse(&text).unwrap_err();
    assert!(err.contains("products[1]: invalid type: sequence"), "{err}");
    let spec = parse(&text.replace(&", [ ]".repeat(40), "")).unwrap();
    assert_eq!(spec.name.as_deref(), Some("[".repeat(40).as_str()));
    assert_eq!(spec.products[0].item, "a[");
}

fn errors_of(file: &str) -> String {
    resolve(&parse(file).unwrap(), "ptid", &catalog(), 0)
        .unwrap_err()
        .join("\n")
}

#[test]
fn r_set_1_partner_id_with_capitals_or_underscore_is_refused_naming_the_allowed_characters() {
    let errs = errors_of(&FILE.replace("id: acme", "id: Demo_MSP"));
    assert!(
        errs.contains("partner id \"Demo_MSP\" must be 1-64 characters of a-z, 0-9 and -"),
        "{errs}"
    );
    let long = format!("id: {}", "a".repeat(65));
    let errs = errors_of(&FILE.replace("id: acme", &long));
    assert!(errs.contains("must be 1-64 characters"), "{errs}");
    let max = format!("id: {}", "a".repeat(64));
    assert!(resolve(
        &parse(&FILE.replace("id: acme", &max)).unwrap(),
        "p",
        &catalog(),
        0
    )
    .is_ok());
    let errs = errors_of(&FILE.replace("id: acme", "id: \"\""));
    assert!(errs.contains("partner id \"\""), "{errs}");
}

#[test]
fn r_set_1_switches_of_functions_not_built_yet_are_refused() {
    let file = format!("{FILE}switches: {{ tickets: true }}\n");
    let errs = errors_of(&file);
    assert!(
        errs.contains("switches.tickets: alert-to-ticket is not built yet"),
        "{errs}"
    );
}

#[test]
fn r_use_4_the_usage_switch_turns_publishing_on() {
    let file = format!("{FILE}switches: {{ usage: true }}\nusage: {{ period: previous_month }}\n");
    let p = resolve(&parse(&file).unwrap(), "p", &catalog(), 0).expect("usage on is accepted");
    assert!(p.switches.usage);
    assert_eq!(
        p.usage_period,
        crate::rules::schedule::ReportingPeriod::PreviousMonth
    );
}

#[test]
fn r_set_1_partner_id_starting_or_ending_with_a_hyphen_is_refused() {
    for id in ["-acme", "acme-", "-"] {
        let errs = errors_of(&FILE.replace("id: acme", &format!("id: \"{id}\"")));
        assert!(
            errs.contains(&format!("partner id {id:?} must not start or end with -")),
            "{id}: {errs}"
        );
    }
    let ok = FILE.replace("id: acme", "id: acme-eu-2");
    assert!(resolve(&parse(&ok).unwrap(), "ptid", &catalog(), 0).is_ok());
}

#[test]
fn r_co_5_a_company_listed_twice_is_refused_even_to_the_same_tenant_case_insensitively() {
    let t = "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10";
    let twice = format!(
        "{FILE}  - {{ company: acme-cust, tenant: {t} }}\n  - {{ company: OTHER, tenant: new }}\n"
    );
    let errs = errors_of(&twice);
    assert!(
        errs.contains("company \"acme-cust\" is listed more than once"),
        "{errs}"
    );
    assert_eq!(errs.matches("more than once").count(), 1, "{errs}");
    let same_tenant = format!(
        "{FILE}  - {{ company: X, tenant: {t} }}\n  - {{ company: \" x \", tenant: {t} }}\n"
    );
    let errs = errors_of(&same_tenant);
    assert!(
        errs.contains("company \"x\" is listed more than once"),
        "{errs}"
    );
    let distinct = format!("{FILE}  - {{ company: X, tenant: {t} }}\n");
    assert!(resolve(&parse(&distinct).unwrap(), "ptid", &catalog(), 0).is_ok());
}

#[test]
fn r_co_1_a_tenant_that_is_not_a_uuid_new_or_none_is_refused_naming_company_and_tenant() {
    let file = |tenant: &str| format!("{FILE}  - {{ company: B, tenant: \"{tenant}\" }}\n");
    for bad in [
        "t-123",
        "NEW",
        "3f2b6c1e8d4a4b9e9a570c6d2e4f8a10",
        "{3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10}",
        "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a1z",
    ] {
        let errs = errors_of(&file(bad));
        assert!(
            errs.contains(&format!("company \"B\": tenant {bad:?} is not a tenant id")),
            "{bad}: {errs}"
        );
        assert!(errs.contains("new (create one) or none"), "{errs}");
    }
    for good in [
        "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10",
        "3F2B6C1E-8D4A-4B9E-9A57-0C6D2E4F8A10",
        "new",
        "none",
        "",
    ] {
        let spec = parse(&file(good)).unwrap();
        assert!(resolve(&spec, "ptid", &catalog(), 0).is_ok(), "{good}");
    }
    let upper = parse(&file("3F2B6C1E-8D4A-4B9E-9A57-0C6D2E4F8A10")).unwrap();
    assert_eq!(
        upper.companies[1].request(),
        MappingRequest::Existing("3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10".into())
    );
}

#[test]
fn every_partner_file_mistake_is_reported_together() {
    let bad = format!(
        "{}  - {{ company: acme-cust, tenant: nope }}\n",
        FILE.replace("id: acme", "id: acme-")
            .replace("ACR-WS }", "ACR-NOPE }")
    );
    let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0).unwrap_err();
    let all = errs.join("\n");
    for want in [
        "product \"ACR-NOPE\" does not exist",
        "must not start or end with -",
        "listed more than once",
        "tenant \"nope\" is not a tenant id",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
}

#[test]
fn r_map_1_an_unknown_offering_item_is_refused_naming_it_and_the_known_ones() {
    let bad = FILE.replace("item: workstations", "item: serverz");
    let errs = errors_of(&bad);
    assert!(
        errs.contains(
            "item serverz: the platform offers no offering item \"serverz\" to this partner"
        ),
        "{errs}"
    );
    assert!(errs.contains("known: workstations, servers, vms"), "{errs}");
    let errs = errors_of(&FILE.replace("item: workstations", "item: Workstations"));
    assert!(errs.contains("(did you mean workstations?)"), "{errs}");
    // Storage is checked against the storage locations, not against the item names.
    let mut c = catalog();
    c.offering_items.retain(|i| i != "storage");
    assert!(resolve(&parse(FILE).unwrap(), "ptid", &c, 0).is_ok());
    let errs = resolve(
        &parse(&FILE.replace(
            "{ item: mailboxes, free: true }",
            "{ item: storage, free: true }",
        ))
        .unwrap(),
        "ptid",
        &c,
        0,
    )
    .unwrap_err()
    .join("\n");
    assert!(
        errs.contains("(a storage item needs its location)"),
        "{errs}"
    );
}

#[test]
fn r_map_1_offering_items_are_not_checked_when_the_catalogue_does_not_know_them() {
    let c = Catalog {
        offering_items: Vec::new(),
        ..catalog()
    };
    let spec = parse(&FILE.replace("item: workstations", "item: serverz")).unwrap();
    assert!(resolve(&spec, "ptid", &c, 0).is_ok());
}

// R-PROV-8: `sync.line_refresh_hours` defaults to 24 and must be a whole number from 1 to 168;
// a wrong one is named.
#[test]
fn r_prov_8_line_refresh_hours_defaults_to_a_day_and_is_checked() {
    let p = resolve(&parse(FILE).unwrap(), "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.line_refresh_hours, 24);
    let with =
        |v: &str| format!("{FILE}sync: {{ full_every_hours: 24, line_refresh_hours: {v} }}\n");
    let p = resolve(&parse(&with("6")).unwrap(), "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.line_refresh_hours, 6);
    let p = resolve(&parse(&with("168")).unwrap(), "ptid", &catalog(), 0).unwrap();
    assert_eq!(p.line_refresh_hours, 168);
    for bad in ["0", "169"] {
        let errs = resolve(&parse(&with(bad)).unwrap(), "ptid", &catalog(), 0).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("sync.line_refresh_hours")
                && e.contains(bad)
                && e.contains("1 to 168")),
            "{errs:?}"
        );
    }
    for bad in ["-1", "1.5", "often"] {
        let err = parse(&with(bad)).unwrap_err();
        assert!(err.contains("line_refresh_hours"), "{bad}: {err}");
    }
    // only the refresh period given: the full-pass cadence keeps its default
    let spec = parse(&format!("{FILE}sync: {{ line_refresh_hours: 2 }}\n")).unwrap();
    assert_eq!(spec.sync.line_refresh_hours, 2);
    assert_eq!(spec.sync.full_every_hours, 24);
}

#[test]
fn r_use_5_r_use_6_the_usage_section_sets_the_reporting_period() {
    use crate::rules::schedule::ReportingPeriod;
    let period = |usage: &str| -> Result<ReportingPeriod, String> {
        let file = format!("{FILE}{usage}");
        match resolve(&parse(&file).unwrap(), "ptid", &catalog(), 0) {
            Ok(p) => Ok(p.usage_period),
            Err(e) => Err(e.join("\n")),
        }
    };
    assert_eq!(period(""), Ok(ReportingPeriod::BillingMonth { day: 1 }));
    assert_eq!(
        period("usage: { period: billing_month, day: 31 }\n"),
        Ok(ReportingPeriod::BillingMonth { day: 31 })
    );
    assert_eq!(
        period("usage: { period: current_month }\n"),
        Ok(ReportingPeriod::CurrentMonth)
    );
    assert_eq!(
        period("usage: { period: previous_month }\n"),
        Ok(ReportingPeriod::PreviousMonth)
    );
    for (bad, want) in [
        (
            "usage: { day: 32 }\n",
            "usage.day: 32 is not a day of the month",
        ),
        (
            "usage: { day: 0 }\n",
            "usage.day: 0 is not a day of the month",
        ),
        (
            "usage: { period: current_month, day: 5 }\n",
            "usage.day: only a billing_month has a publish day",
        ),
    ] {
        let e = period(bad).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
    }
    assert!(parse(&format!("{FILE}usage: {{ period: weekly }}\n")).is_err());
    assert!(parse(&format!("{FILE}usage: {{ dya: 3 }}\n")).is_err());
}
