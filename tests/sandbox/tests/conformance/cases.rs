//! The conformance cases: per fake, the requests the product makes (with its query strings)
//! and the writes a PSA user makes, in an order that lets later cases use earlier ids.

use serde_json::{json, Value};

use super::{at_seed, cw_seed, Harness, Req};
use crate::schema::Vendor;

fn id(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

pub async fn connectwise(h: &mut Harness) {
    let (product, company, agreement, addition) = cw_seed(&h.sb);
    let url = format!("{}/login/companyinfo/acme", h.sb.connectwise.url());
    h.check(Req {
        vendor: Vendor::ConnectWise,
        method: "GET",
        route: "/login/companyinfo/{company}",
        url,
        body: None,
        headers: vec![],
    })
    .await;
    h.cw("GET", "system/info", "system/info", None).await;

    // The product's reads: forward-only paging, `conditions` as it writes them.
    for (res, cond) in [
        (
            "company/companies",
            "lastUpdated > [2026-01-01T00:00:00Z]".to_string(),
        ),
        ("company/contacts", "id in (1,2)".to_string()),
        (
            "finance/agreements",
            format!("(company/id in ({company})) and lastUpdated > [2026-01-01T00:00:00Z]"),
        ),
        ("procurement/catalog", "inactiveFlag = False".to_string()),
        ("system/callbacks", "type = \"company\"".to_string()),
        ("service/tickets", "closedFlag = False".to_string()),
    ] {
        let url = h.cw_url(&format!("{res}?pageSize=1000&conditions={}", urlenc(&cond)));
        let route = format!("/{{codebase}}/apis/3.0/{res}");
        h.check(Req {
            vendor: Vendor::ConnectWise,
            method: "GET",
            route: &route,
            url,
            body: None,
            headers: vec![("pagination-type", "forward-only".into())],
        })
        .await;
        h.cw(
            "GET",
            &format!("{res}/count"),
            &format!("{res}/count"),
            None,
        )
        .await;
    }
    h.cw(
        "GET",
        "company/companies",
        "company/companies?childConditions=types%2Fid%3D1",
        None,
    )
    .await;
    h.cw(
        "GET",
        "company/companies/{id}",
        &format!("company/companies/{company}"),
        None,
    )
    .await;
    let contact =
        h.sb.connectwise
            .company("acme", company)
            .unwrap()
            .default_contact
            .unwrap()
            .id;
    h.cw(
        "GET",
        "company/contacts/{id}",
        &format!("company/contacts/{contact}"),
        None,
    )
    .await;
    h.cw(
        "GET",
        "finance/agreements/{id}",
        &format!("finance/agreements/{agreement}"),
        None,
    )
    .await;
    h.cw(
        "GET",
        "procurement/catalog/{id}",
        &format!("procurement/catalog/{product}"),
        None,
    )
    .await;
    let adds = format!("finance/agreements/{agreement}/additions");
    h.cw(
        "GET",
        "finance/agreements/{parentId}/additions",
        &format!("{adds}?pageSize=1000"),
        None,
    )
    .await;
    h.cw(
        "GET",
        "finance/agreements/{parentId}/additions/count",
        &format!("{adds}/count"),
        None,
    )
    .await;
    h.cw(
        "GET",
        "finance/agreements/{parentId}/additions/{id}",
        &format!("{adds}/{addition}"),
        None,
    )
    .await;

    // Additions as the product writes them (two-way), then PUT / DELETE.
    let add = h
        .cw(
            "POST",
            "finance/agreements/{parentId}/additions",
            &adds,
            Some(
                json!({"product": {"id": product}, "quantity": 2, "billCustomer": "Billable",
                        "effectiveDate": "2026-11-01T00:00:00Z"}),
            ),
        )
        .await;
    let new_add = id(&add, "id");
    let one = "finance/agreements/{parentId}/additions/{id}";
    h.cw(
        "PATCH",
        one,
        &format!("{adds}/{new_add}"),
        Some(json!([{"op": "replace", "path": "quantity", "value": 4}])),
    )
    .await;
    h.cw(
        "PUT",
        one,
        &format!("{adds}/{new_add}"),
        Some(json!({"product": {"id": product}, "quantity": 5, "billCustomer": "Billable"})),
    )
    .await;
    h.cw("DELETE", one, &format!("{adds}/{new_add}"), None)
        .await;

    // Callbacks (webhook registration).
    let cb = h
        .cw(
            "POST",
            "system/callbacks",
            "system/callbacks",
            Some(
                json!({"url": "https://hooks.example/cw?recordId=", "objectId": 1,
                        "type": "Company", "level": "Owner", "description": "psa-bridge"}),
            ),
        )
        .await;
    let cb = id(&cb, "id");
    h.cw(
        "GET",
        "system/callbacks/{id}",
        &format!("system/callbacks/{cb}"),
        None,
    )
    .await;
    h.cw(
        "PUT",
        "system/callbacks/{id}",
        &format!("system/callbacks/{cb}"),
        Some(
            json!({"url": "https://hooks.example/cw2?recordId=", "objectId": 1,
                     "type": "Company", "level": "Owner"}),
        ),
    )
    .await;
    h.cw(
        "DELETE",
        "system/callbacks/{id}",
        &format!("system/callbacks/{cb}"),
        None,
    )
    .await;

    // What a person in Manage writes.
    let co = h
        .cw(
            "POST",
            "company/companies",
            "company/companies",
            Some(json!({"identifier": "Globex", "name": "Globex", "types": [{"id": 1}]})),
        )
        .await;
    let co = id(&co, "id");
    h.cw(
        "PATCH",
        "company/companies/{id}",
        &format!("company/companies/{co}"),
        Some(json!([{"op": "replace", "path": "name", "value": "Globex Corp"}])),
    )
    .await;
    let ct = h
        .cw(
            "POST",
            "company/contacts",
            "company/contacts",
            Some(
                json!({"firstName": "Gil", "lastName": "B", "company": {"id": co},
                        "defaultFlag": true,
                        "communicationItems": [{"type": {"name": "Email"},
                                                "value": "gil@globex.test"}]}),
            ),
        )
        .await;
    let ct = id(&ct, "id");
    h.cw(
        "PATCH",
        "company/contacts/{id}",
        &format!("company/contacts/{ct}"),
        Some(json!([{"op": "replace", "path": "lastName", "value": "Bates"}])),
    )
    .await;
    let ag = h
        .cw(
            "POST",
            "finance/agreements",
            "finance/agreements",
            Some(
                json!({"name": "Backup", "type": {"id": 1}, "company": {"id": co},
                        "contact": {"id": ct}, "startDate": "2026-11-01T00:00:00Z",
                        "noEndingDateFlag": true}),
            ),
        )
        .await;
    let ag = id(&ag, "id");
    h.cw(
        "PATCH",
        "finance/agreements/{id}",
        &format!("finance/agreements/{ag}"),
        Some(json!([{"op": "replace", "path": "name", "value": "Backup 2"}])),
    )
    .await;
    let t = h
        .cw(
            "POST",
            "service/tickets",
            "service/tickets",
            Some(json!({"summary": "Backup failed", "company": {"id": co}})),
        )
        .await;
    let t = id(&t, "id");
    h.cw(
        "GET",
        "service/tickets/{id}",
        &format!("service/tickets/{t}"),
        None,
    )
    .await;
    h.cw(
        "PATCH",
        "service/tickets/{id}",
        &format!("service/tickets/{t}"),
        Some(json!([{"op": "replace", "path": "status", "value": {"id": 3}}])),
    )
    .await;
}

pub async fn autotask(h: &mut Harness) {
    let (service, company, contract, cs) = at_seed(&h.sb);
    let url = format!(
        "{}/ATServicesRest/V1.0/ZoneInformation?user=api@msp.test",
        h.sb.autotask.url()
    );
    h.check(Req {
        vendor: Vendor::Autotask,
        method: "GET",
        route: "/ATServicesRest/V1.0/ZoneInformation",
        url,
        body: None,
        headers: vec![],
    })
    .await;
    h.at("GET", "VersionInformation", "VersionInformation", None)
        .await;
    h.at(
        "GET",
        "V1.0/ThresholdInformation",
        "V1.0/ThresholdInformation",
        None,
    )
    .await;
    let found = h
        .at(
            "POST",
            "V1.0/Contacts/query",
            "V1.0/Contacts/query",
            Some(json!({"filter": [{"op": "eq", "field": "companyID", "value": company}]})),
        )
        .await;
    let contact = id(&found["items"][0], "id");
    let unit = h.sb.autotask.service_units(cs)[0].id;
    let ids = [
        ("Companies", company),
        ("Contacts", contact),
        ("Contracts", contract),
        ("ContractServices", cs),
        ("ContractServiceUnits", unit),
        ("Services", service),
        ("BillingCodes", 0),
        ("Tickets", 0),
    ];
    for e in [
        "Companies",
        "Contacts",
        "Contracts",
        "ContractServices",
        "ContractServiceUnits",
        "ContractServiceAdjustments",
        "Services",
        "BillingCodes",
        "Tickets",
    ] {
        for info in [
            "entityInformation",
            "entityInformation/fields",
            "entityInformation/userDefinedFields",
        ] {
            let p = format!("V1.0/{e}/{info}");
            h.at("GET", &p, &p, None).await;
        }
        let Some((_, rid)) = ids.iter().find(|(n, _)| *n == e) else {
            continue;
        };
        let filter = json!({"maxRecords": 500,
                            "filter": [{"op": "gte", "field": "id", "value": 0}]});
        let q = format!("V1.0/{e}/query");
        h.at("POST", &q, &q, Some(filter.clone())).await;
        let search = format!("{q}?search={}", urlenc(&filter.to_string()));
        h.at("GET", &q, &search, None).await;
        let c = format!("V1.0/{e}/query/count");
        h.at("POST", &c, &c, Some(filter.clone())).await;
        h.at(
            "GET",
            &c,
            &format!("{c}?search={}", urlenc(&filter.to_string())),
            None,
        )
        .await;
        // a record, or a missing id (200 with a null item)
        h.at(
            "GET",
            &format!("V1.0/{e}/{{id}}"),
            &format!("V1.0/{e}/{rid}"),
            None,
        )
        .await;
    }
    // Children through their parent (what the product reads and writes).
    let svc = format!("V1.0/Contracts/{contract}/Services");
    h.at("GET", "V1.0/Contracts/{id}/Services", &svc, None)
        .await;
    h.at(
        "GET",
        "V1.0/Contracts/{id}/Services/{childId}",
        &format!("{svc}/{cs}"),
        None,
    )
    .await;
    let units = format!("V1.0/Contracts/{contract}/ServiceUnits");
    h.at("GET", "V1.0/Contracts/{id}/ServiceUnits", &units, None)
        .await;
    h.at(
        "GET",
        "V1.0/Contracts/{id}/ServiceUnits/{childId}",
        &format!("{units}/{unit}"),
        None,
    )
    .await;
    let contacts = format!("V1.0/Companies/{company}/Contacts");
    h.at("GET", "V1.0/Companies/{id}/Contacts", &contacts, None)
        .await;
    h.at(
        "GET",
        "V1.0/Companies/{id}/Contacts/{childId}",
        &format!("{contacts}/{contact}"),
        None,
    )
    .await;
    let service2 = h.sb.autotask.add_service("Cyber Protect server", "Monthly");
    let added = h
        .at(
            "POST",
            "V1.0/Contracts/{id}/Services",
            &svc,
            Some(json!({"serviceID": service2, "unitPrice": 12.5})),
        )
        .await;
    let added = id(&added, "itemId");
    h.at(
        "PATCH",
        "V1.0/Contracts/{id}/Services",
        &svc,
        Some(json!({"id": added, "unitPrice": 13})),
    )
    .await;
    h.at(
        "POST",
        "V1.0/Contracts/{id}/ServiceAdjustments",
        &format!("V1.0/Contracts/{contract}/ServiceAdjustments"),
        Some(json!({"contractServiceID": added, "unitChange": 3,
                     "effectiveDate": "2026-11-01T00:00:00"})),
    )
    .await;
    h.at(
        "POST",
        "V1.0/ContractServiceAdjustments",
        "V1.0/ContractServiceAdjustments",
        Some(
            json!({"contractID": contract, "contractServiceID": added, "unitChange": -1,
                     "effectiveDate": "2026-11-01T00:00:00"}),
        ),
    )
    .await;

    // What a person in Autotask writes.
    let co = h
        .at(
            "POST",
            "V1.0/Companies",
            "V1.0/Companies",
            Some(json!({"companyName": "Globex", "companyType": 1})),
        )
        .await;
    let co = id(&co, "itemId");
    h.at(
        "PATCH",
        "V1.0/Companies",
        "V1.0/Companies",
        Some(json!({"id": co, "phone": "555-0100"})),
    )
    .await;
    // a refused write: HTTP 500 with errors (Q5)
    h.at(
        "POST",
        "V1.0/Companies",
        "V1.0/Companies",
        Some(json!({"companyType": 1})),
    )
    .await;
    let gc = format!("V1.0/Companies/{co}/Contacts");
    let ct = h
        .at(
            "POST",
            "V1.0/Companies/{id}/Contacts",
            &gc,
            Some(json!({"firstName": "Gil", "lastName": "B", "isActive": 1,
                        "emailAddress": "gil@globex.test"})),
        )
        .await;
    let ct = id(&ct, "itemId");
    h.at(
        "PATCH",
        "V1.0/Companies/{id}/Contacts",
        &gc,
        Some(json!({"id": ct, "primaryContact": true})),
    )
    .await;
    let k = h
        .at(
            "POST",
            "V1.0/Contracts",
            "V1.0/Contracts",
            Some(
                json!({"companyID": co, "contractName": "Backup", "contractType": 7,
                        "status": 1, "startDate": "2026-11-01T00:00:00Z",
                        "endDate": "2027-10-31T00:00:00Z"}),
            ),
        )
        .await;
    let k = id(&k, "itemId");
    h.at(
        "PATCH",
        "V1.0/Contracts",
        "V1.0/Contracts",
        Some(json!({"id": k, "contractName": "Backup 2"})),
    )
    .await;
    let s = h
        .at(
            "POST",
            "V1.0/Services",
            "V1.0/Services",
            Some(json!({"name": "Cyber Protect M365", "periodType": 1, "unitPrice": 2})),
        )
        .await;
    let s = id(&s, "itemId");
    h.at(
        "PATCH",
        "V1.0/Services",
        "V1.0/Services",
        Some(json!({"id": s, "unitPrice": 3})),
    )
    .await;
    let t = h
        .at(
            "POST",
            "V1.0/Tickets",
            "V1.0/Tickets",
            Some(
                json!({"title": "Backup failed", "companyID": co, "status": 1,
                        "priority": 2}),
            ),
        )
        .await;
    let t = id(&t, "itemId");
    h.at(
        "PATCH",
        "V1.0/Tickets",
        "V1.0/Tickets",
        Some(json!({"id": t, "status": 5})),
    )
    .await;
    h.at(
        "GET",
        "V1.0/Tickets/{id}",
        &format!("V1.0/Tickets/{t}"),
        None,
    )
    .await;
}

pub async fn platform(h: &mut Harness) {
    let p = h.sb.platform.add_partner("Acme MSP");
    let tok = h
        .pf(
            "POST",
            "idp/token",
            "idp/token",
            Some(
                json!({"grant_type": "client_credentials", "client_id": p.client_id,
                        "client_secret": p.client_secret}),
            ),
        )
        .await;
    h.pf_token = tok["access_token"].as_str().expect("token").to_string();
    let root = p.tenant_id.clone();
    h.pf(
        "GET",
        "clients/{client_id}",
        &format!("clients/{}", p.client_id),
        None,
    )
    .await;
    let made = h
        .pf(
            "POST",
            "tenants",
            "tenants",
            Some(
                json!({"name": "Contoso", "kind": "customer", "parent_id": root,
                        "customer_id": "19300"}),
            ),
        )
        .await;
    let t = made["id"].as_str().expect("tenant id").to_string();
    for q in [
        format!("tenants?parent_id={root}&expand_offering_items=true&limit=100"),
        format!("tenants?uuids={t}&expand_offering_items=true"),
        format!("tenants?parent_id={root}&with_offering_items=true"),
    ] {
        h.pf("GET", "tenants", &q, None).await;
    }
    h.pf("GET", "tenants/{id}", &format!("tenants/{t}"), None)
        .await;
    h.pf(
        "GET",
        "tenants/{id}/children",
        &format!("tenants/{root}/children"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "tenants/{id}/users",
        &format!("tenants/{t}/users"),
        None,
    )
    .await;
    let items = h
        .pf(
            "GET",
            "tenants/{id}/offering_items",
            &format!("tenants/{t}/offering_items?edition=*"),
            None,
        )
        .await;
    let ws = items["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "workstations"))
        .cloned()
        .expect("workstations");
    h.pf(
        "PUT",
        "tenants/{id}/offering_items",
        &format!("tenants/{t}/offering_items"),
        Some(
            json!({"offering_items": [{"application_id": ws["application_id"],
                     "name": "workstations", "status": 1,
                     "quota": {"value": 5, "overage": 5,
                               "version": ws["quota"]["version"]}}]}),
        ),
    )
    .await;
    h.pf(
        "GET",
        "tenants/offering_items",
        &format!("tenants/offering_items?subtree_root_tenant_id={root}&limit=100"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "tenants/{id}/offering_items/available_for_child",
        &format!("tenants/{root}/offering_items/available_for_child?kind=customer&edition=*"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "tenants/usages",
        &format!("tenants/usages?tenants={t}"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "tenants/{id}/usages",
        &format!("tenants/{t}/usages"),
        None,
    )
    .await;
    let locs = h
        .pf(
            "GET",
            "tenants/{id}/locations",
            &format!("tenants/{root}/locations"),
            None,
        )
        .await;
    let loc = locs["locations"][0].as_str().unwrap_or("x").to_string();
    h.pf(
        "GET",
        "locations/{id}/infra",
        &format!("locations/{loc}/infra"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "infra",
        &format!("infra?uuids={}", p.default_infra_id),
        None,
    )
    .await;
    let pricing = h
        .pf(
            "GET",
            "tenants/{id}/pricing",
            &format!("tenants/{t}/pricing"),
            None,
        )
        .await;
    h.pf(
        "PUT",
        "tenants/{id}/pricing",
        &format!("tenants/{t}/pricing"),
        Some(json!({"mode": "production", "version": pricing["version"]})),
    )
    .await;
    h.pf(
        "GET",
        "tenants/{id}/mfa/status",
        &format!("tenants/{t}/mfa/status"),
        None,
    )
    .await;
    h.pf(
        "PUT",
        "tenants/{id}/mfa/status",
        &format!("tenants/{t}/mfa/status"),
        Some(json!({"enabled": true})),
    )
    .await;
    h.pf(
        "GET",
        "users/check_login",
        "users/check_login?username=ada%40contoso.test",
        None,
    )
    .await;
    let user = h
        .pf(
            "POST",
            "users",
            "users",
            Some(json!({"tenant_id": t, "login": "ada@contoso.test",
                        "contact": {"email": "ada@contoso.test", "firstname": "Ada",
                                    "lastname": "L"}})),
        )
        .await;
    let uid = user["id"].as_str().expect("user id").to_string();
    h.pf("GET", "users/{id}", &format!("users/{uid}"), None)
        .await;
    h.pf(
        "POST",
        "users/{id}/send-activation-email",
        &format!("users/{uid}/send-activation-email"),
        None,
    )
    .await;
    let cur = h
        .pf("GET", "tenants/{id}", &format!("tenants/{t}"), None)
        .await;
    let v = cur["version"].as_i64().unwrap_or(0);
    let cur = h
        .pf(
            "PUT",
            "tenants/{id}",
            &format!("tenants/{t}"),
            Some(json!({"name": "Contoso Ltd", "version": v})),
        )
        .await;
    let v = cur["version"].as_i64().unwrap_or(0);
    let t2 = h
        .pf(
            "POST",
            "tenants",
            "tenants",
            Some(json!({"name": "Doomed", "kind": "customer", "parent_id": root})),
        )
        .await;
    let t2 = t2["id"].as_str().unwrap_or("x").to_string();
    let _ = v;
    let v2 = h.sb.platform.tenant(&t2).expect("made")["version"]
        .as_i64()
        .unwrap_or(0);
    h.pf(
        "DELETE",
        "tenants/{id}",
        &format!("tenants/{t2}?version={v2}"),
        None,
    )
    .await;
    platform_usage_reports(h, &root, &t, &p.default_infra_id).await;
}

/// Usage reporting and usage reports (`usage.rs`, `reports.rs` of the fake).
async fn platform_usage_reports(h: &mut Harness, root: &str, t: &str, infra: &str) {
    let pf = h.sb.platform.clone();
    pf.set_status_by_hand(t, "storage", Some(infra), true);
    pf.set_usage_as(t, "storage", Some(infra), "storage_class1", 5.0);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 15).unwrap();
    pf.set_usage_on(day, t, "storage", Some(infra), None, 1_073_741_824.0);
    h.pf(
        "PUT",
        "tenants/usages",
        "tenants/usages",
        Some(json!({"items": [
            {"tenant_id": t, "offering_item": "workstations", "usage_value": 3},
            {"tenant_id": t, "offering_item": "no_such_item", "usage_value": 1},
            {"resource_id": "r-1", "usage_type": "storage", "usage_value": 1},
        ]})),
    )
    .await;
    h.pf(
        "GET",
        "tenants/usages",
        &format!("tenants/usages?tenants={t}&usage_names=storage,storage_class1"),
        None,
    )
    .await;
    let body = json!({
        "recipients": [],
        "result_action": "save",
        "parameters": {"tenant_id": root, "level": "all_customers", "kind": "usage_summary",
                       "period": {"start": "2026-10-01", "end": "2026-10-31"},
                       "formats": ["csv_v2_0", "csv"], "hide_zero_usage": false},
        "schedule": {"type": "once"},
    });
    let mut bad = body.clone();
    bad["parameters"]["kind"] = json!("usage_weekly");
    h.pf("POST", "reports", "reports", Some(bad)).await;
    let report = h.pf("POST", "reports", "reports", Some(body)).await;
    let rid = report["id"].as_str().expect("a report").to_string();
    h.pf(
        "GET",
        "reports/{report_id}",
        &format!("reports/{rid}"),
        None,
    )
    .await;
    let route = "reports/{report_id}/stored";
    h.pf("GET", route, &format!("reports/{rid}/stored"), None)
        .await;
    let stored = h
        .pf("GET", route, &format!("reports/{rid}/stored"), None)
        .await;
    let sid = stored["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["status"] == "saved"))
        .and_then(|s| s["id"].as_str())
        .expect("a saved stored report")
        .to_string();
    h.pf(
        "GET",
        "reports/{report_id}/stored/{stored_report_id}",
        &format!("reports/{rid}/stored/{sid}"),
        None,
    )
    .await;
    h.pf(
        "GET",
        "tenants/{id}/reports",
        &format!("tenants/{root}/reports"),
        None,
    )
    .await;
    let v = report["version"].as_i64().unwrap_or(0);
    h.pf(
        "DELETE",
        "reports/{report_id}",
        &format!("reports/{rid}?version={v}"),
        None,
    )
    .await;
}

fn urlenc(s: &str) -> String {
    url_encode(s)
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
