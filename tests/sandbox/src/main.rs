//! `psa-sandbox [--cw-port N] [--platform-port N] [--autotask-port N] [--seed-demo]`
//!
//! Starts all fakes on 127.0.0.1, prints one JSON line
//! `{"connectwise":"http://…","platform":"http://…","autotask":"http://…"}` and serves until
//! Ctrl-C.
//! With `--seed-demo` it also creates a small demo data set and adds its credentials to the
//! printed line (`demo` object). `--help` shows how to add data with plain `curl`.

use serde_json::json;

const USAGE: &str =
    "usage: psa-sandbox [--cw-port N] [--platform-port N] [--autotask-port N] [--seed-demo]";

/// `--help`: what the fakes are and how to add data with plain `curl` (demo credentials).
const HELP: &str = r#"
Starts fake ConnectWise Manage, Autotask and Acronis platform servers on 127.0.0.1 and prints
one JSON line {"connectwise":URL,"platform":URL,"autotask":URL[,"demo":{credentials}]}.
--seed-demo seeds one demo company per PSA (agreement/contract with 5 workstations), a
platform partner, and these credentials. Below, CW/AT/PF are the printed URLs, e.g.
  psa-sandbox --seed-demo --cw-port 8001 --platform-port 8002 --autotask-port 8003
  CW=http://127.0.0.1:8001 AT=http://127.0.0.1:8003 PF=http://127.0.0.1:8002

ConnectWise Manage (login company "sandbox", API member keys sandbox-public/sandbox-private;
Basic auth "{company}+{public}:{private}" plus a clientId header; codebase v2025_1/):
  api="$CW/v2025_1/apis/3.0"; cw=(-u 'sandbox+sandbox-public:sandbox-private' -H 'clientId: demo' -H 'Content-Type: application/json')
  curl "${cw[@]}" "$api/company/companies"                       # list (conditions, childConditions, fields, pageSize …)
  curl "${cw[@]}" "$api/procurement/catalog"                     # the seeded product ACR-WORKSTATION (id 100)
  curl "${cw[@]}" -X POST "$api/company/companies" -d '{"identifier":"Globex","name":"Globex Corp","types":[{"name":"Client"}]}'
  curl "${cw[@]}" -X POST "$api/company/contacts" -d '{"firstName":"Gil","lastName":"Bates","company":{"identifier":"Globex"},"defaultFlag":true,"communicationItems":[{"type":{"name":"Email"},"value":"gil@globex.invalid","defaultFlag":true}]}'
  curl "${cw[@]}" -X POST "$api/finance/agreements" -d '{"name":"Backup","type":{"name":"Managed Services"},"company":{"identifier":"Globex"},"contact":{"id":CONTACT_ID},"noEndingDateFlag":true}'
  curl "${cw[@]}" -X POST "$api/finance/agreements/AGREEMENT_ID/additions" -d '{"product":{"identifier":"ACR-WORKSTATION"},"quantity":3,"billCustomer":"Billable"}'
  curl "${cw[@]}" -X PATCH "$api/finance/agreements/AGREEMENT_ID/additions/ADDITION_ID" -d '[{"op":"replace","path":"quantity","value":7}]'
  curl "${cw[@]}" -X POST "$api/service/tickets" -d '{"summary":"Backup failed","company":{"identifier":"Globex"}}'
  (PATCH company/companies/ID, company/contacts/ID, finance/agreements/ID, service/tickets/ID the same way.)

Autotask (headers ApiIntegrationCode/UserName/Secret; writes answer 200 {"itemId":N}):
  at=(-H 'ApiIntegrationCode: SANDBOXINTEGRATIONCODE' -H 'UserName: api@sandbox.invalid' -H 'Secret: sandbox-secret' -H 'Content-Type: application/json')
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Companies/query" -d '{"filter":[{"op":"exist","field":"id"}]}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Companies" -d '{"companyName":"Initech","companyType":1}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Companies/COMPANY_ID/Contacts" -d '{"firstName":"Peter","lastName":"Gibbons","isActive":1,"emailAddress":"peter@initech.invalid","primaryContact":true}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Contracts" -d '{"companyID":COMPANY_ID,"contractName":"Backup","contractType":7,"status":1,"startDate":"2026-11-01T00:00:00Z","endDate":"2027-10-31T00:00:00Z"}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Contracts/CONTRACT_ID/Services" -d '{"serviceID":SERVICE_ID,"unitPrice":10}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Contracts/CONTRACT_ID/ServiceAdjustments" -d '{"contractServiceID":CS_ID,"unitChange":3,"effectiveDate":"2026-11-01"}'
  curl "${at[@]}" -X POST "$AT/ATServicesRest/V1.0/Tickets" -d '{"title":"Backup failed","companyID":COMPANY_ID,"status":1,"priority":2}'
  (PATCH /Companies, /Contracts, /Tickets, /Companies/ID/Contacts, /Contracts/ID/Services take {"id":N, …}.)
  SERVICE_ID: POST Services/query {"filter":[{"op":"eq","field":"name","value":"Acronis workstation"}]}.

Acronis platform (client credentials from the "demo" object):
  tok=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$PF/api/2/idp/token" | jq -r .access_token)
  curl -H "Authorization: Bearer $tok" "$PF/api/2/tenants?parent_id=$TENANT_ID&expand_offering_items=true"
  curl -H "Authorization: Bearer $tok" -X POST "$PF/api/2/tenants" -H 'Content-Type: application/json' -d '{"name":"Globex","kind":"customer","parent_id":"'$TENANT_ID'"}'

Test hooks on each fake: GET /_sandbox/stats, POST /_sandbox/faults, POST /_sandbox/clock {"now":…}.
ConnectWise only: POST /_sandbox/connectwise/addition-edits {"touch_agreement":true|false}
(whether an addition edit also stamps its agreement's _info.lastUpdated; off by default).
"#;

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn port(v: Option<String>) -> u16 {
    v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut cw_port = 0u16;
    let mut platform_port = 0u16;
    let mut autotask_port = 0u16;
    let mut seed = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cw-port" => cw_port = port(args.next()),
            "--platform-port" => platform_port = port(args.next()),
            "--autotask-port" => autotask_port = port(args.next()),
            "--seed-demo" => seed = true,
            "-h" | "--help" => {
                println!("{USAGE}\n{HELP}");
                return Ok(());
            }
            _ => {
                if let Some(v) = a.strip_prefix("--cw-port=") {
                    cw_port = port(Some(v.to_string()));
                } else if let Some(v) = a.strip_prefix("--platform-port=") {
                    platform_port = port(Some(v.to_string()));
                } else if let Some(v) = a.strip_prefix("--autotask-port=") {
                    autotask_port = port(Some(v.to_string()));
                } else {
                    usage()
                }
            }
        }
    }
    let sb = sandbox::Sandbox::start_on(cw_port, platform_port, autotask_port).await?;
    let mut line = json!({
        "connectwise": sb.connectwise.url(),
        "platform": sb.platform.url(),
        "autotask": sb.autotask.url(),
    });
    if seed {
        sb.connectwise
            .add_instance("sandbox", "sandbox-public", "sandbox-private");
        let product =
            sb.connectwise
                .add_product("sandbox", "ACR-WORKSTATION", "Acronis workstation");
        let company = sb.connectwise.add_company(
            "sandbox",
            sandbox::NewCompany {
                identifier: "DemoCo".into(),
                name: "Demo Company".into(),
                type_name: Some("Client".into()),
                primary_contact: Some(("Dana".into(), "Demo".into(), "dana@demo.invalid".into())),
                ..Default::default()
            },
        );
        let agreement = sb.connectwise.add_agreement(
            "sandbox",
            sandbox::NewAgreement {
                company_id: company,
                name: "Backup".into(),
                no_ending_date_flag: true,
                ..Default::default()
            },
        );
        sb.connectwise.add_addition(
            "sandbox",
            agreement,
            sandbox::NewAddition {
                product_id: product,
                quantity: 5.0,
                ..Default::default()
            },
        );
        let at = &sb.autotask;
        at.add_api_user(
            "api@sandbox.invalid",
            "sandbox-secret",
            "SANDBOXINTEGRATIONCODE",
        );
        let at_service = at.add_service("Acronis workstation", "Monthly");
        let at_company = at.add_company(sandbox::AtNewCompany {
            name: "Demo Company".into(),
            company_type: Some("Customer".into()),
            primary_contact: Some(("Dana".into(), "Demo".into(), "dana@demo.invalid".into())),
        });
        let at_contract = at.add_contract(sandbox::AtNewContract {
            company_id: at_company,
            name: "Backup".into(),
            status_active: true,
            udfs: vec![("PAYG".into(), "No".into())],
            ..Default::default()
        });
        at.add_contract_service(at_contract, at_service, 5.0);
        let p = sb.platform.add_partner("Demo Partner");
        line["demo"] = json!({
            "connectwise": {"company": "sandbox", "public_key": "sandbox-public",
                "private_key": "sandbox-private"},
            "autotask": {"username": "api@sandbox.invalid", "secret": "sandbox-secret",
                "integration_code": "SANDBOXINTEGRATIONCODE"},
            "platform": {"tenant_id": p.tenant_id, "client_id": p.client_id,
                "client_secret": p.client_secret, "default_infra_id": p.default_infra_id},
        });
    }
    println!("{line}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
