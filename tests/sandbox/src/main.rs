//! `psa-sandbox [--cw-port N] [--platform-port N] [--autotask-port N] [--seed-demo]`
//!
//! Starts all fakes on 127.0.0.1, prints one JSON line
//! `{"connectwise":"http://…","platform":"http://…","autotask":"http://…"}` and serves until
//! Ctrl-C.
//! With `--seed-demo` it also creates a small demo data set and adds its credentials to the
//! printed line (`demo` object).

use serde_json::json;

fn usage() -> ! {
    eprintln!(
        "usage: psa-sandbox [--cw-port N] [--platform-port N] [--autotask-port N] [--seed-demo]"
    );
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
            "-h" | "--help" => usage(),
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
