//! The operator CLI as operators run it: `psa-bridge …` (the binary's own entry point, in
//! process) against moto and the sandbox — exit statuses, partner-file mistakes named before
//! anything is written, the Autotask zone URL, `rules`, completions.

use e2e::*;
use psa_bridge_cli::exit;
use sandbox::Fault;

/// Runs `psa-bridge ARGS` against the world's moto; returns (status, stdout, stderr).
async fn cli(w: &World, args: &[&str]) -> (i32, String, String) {
    w.cli(args).await
}

const NOW: &str = "2026-11-22T10:00:00Z";

fn write_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("psa-bridge-cli-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn uuid_like() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

// R-PROV-10 R-CO-4
#[tokio::test]
async fn cli_exit_status_says_whether_the_sync_did_everything() {
    let w = World::new().await;
    let (_, a) = w.customer("Contoso");
    w.addition(a, w.products.ws, 0.0, None);

    // 2: the command line is wrong
    let (code, _, err) = cli(&w, &["sync", "--partnr", "acme"]).await;
    assert_eq!(code, exit::USAGE, "{err}");
    // 1: an unknown partner, named
    let (code, _, err) = cli(&w, &["sync", "--partner", "nobody", "--now", NOW]).await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("unknown partner \"nobody\""), "{err}");
    // 3: a company failed (the platform refuses its quotas once)
    w.sandbox.platform.faults().push(
        Fault::status(400, None)
            .method("PUT")
            .path_contains("offering_items")
            .times(1),
    );
    let (code, out, _) = cli(&w, &["sync", "--partner", PARTNER, "--full", "--now", NOW]).await;
    assert_eq!(code, exit::COMPANIES_FAILED, "{out}");
    assert!(out.contains("1 failed"), "{out}");
    // 0: the next pass completes it
    let (code, out, err) = cli(&w, &["sync", "--partner", PARTNER, "--full", "--now", NOW]).await;
    assert_eq!(code, exit::OK, "{out}{err}");
    assert!(out.contains("0 failed"), "{out}");
}

// R-PROV-10 R-MAP-6
#[tokio::test]
async fn cli_exit_status_4_when_the_guard_blocks_the_run() {
    let w = World::new().await;
    let mut agreements = vec![];
    for i in 0..6 {
        let (_, a) = w.customer(&format!("Customer {i}"));
        w.addition(a, w.products.ws, 0.0, None);
        agreements.push(a);
    }
    let (code, _, err) = cli(&w, &["sync", "--partner", PARTNER, "--full", "--now", NOW]).await;
    assert_eq!(code, exit::OK, "{err}");
    for a in &agreements {
        w.sandbox
            .connectwise
            .update_agreement(CW_COMPANY, *a, |ag| ag.cancelled_flag = true);
    }
    let yaml = w.partner_yaml("").replace(
        "provisioning: { auto_create: true }",
        "provisioning: { auto_create: true, deprovision: { zero_quotas: true } }",
    );
    let file = write_file("partner.yaml", &yaml);
    let (code, _, err) = cli(&w, &["partner", "apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, exit::OK, "{err}");
    let (code, out, _) = cli(
        &w,
        &[
            "sync",
            "--partner",
            PARTNER,
            "--full",
            "--now",
            "2026-11-22T10:05:00Z",
        ],
    )
    .await;
    assert_eq!(code, exit::BLOCKED, "{out}");
    assert!(
        out.contains("BLOCKED") && out.contains("R-PROV-10"),
        "{out}"
    );
    // the dry run of a blocked run says so too
    let (code, _, _) = cli(
        &w,
        &[
            "sync",
            "--partner",
            PARTNER,
            "--full",
            "--dry-run",
            "--now",
            "2026-11-22T10:06:00Z",
        ],
    )
    .await;
    assert_eq!(code, exit::BLOCKED);
}

/// Applies `yaml` through the CLI; the stored partner must be unchanged after a refusal.
async fn refused(w: &World, yaml: &str, want: &[&str]) {
    let before = w.ctx.store.partner(PARTNER).await.unwrap();
    let records = w.ctx.store.companies(PARTNER).await.unwrap();
    let file = write_file("partner.yaml", yaml);
    let (code, out, err) = cli(w, &["partner", "apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, exit::FAILED, "{out}{err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    assert_eq!(
        w.ctx.store.partner(PARTNER).await.unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(w.ctx.store.companies(PARTNER).await.unwrap(), records);
}

// R-MAP-5 R-CO-5 R-SET-1
#[tokio::test]
async fn cli_partner_file_mistakes_are_named_and_nothing_is_written() {
    let w = World::new().await;
    let (c1, _) = w.customer("Contoso");
    let _ = c1;
    // a misspelled offering item
    let yaml = w
        .partner_yaml("")
        .replace("item: servers", "item: serverz")
        .replace("name: Acme MSP", "name: Acme MSP (renamed)");
    refused(&w, &yaml, &["serverz"]).await;
    // the same company listed twice, with different tenants
    let yaml = w.partner_yaml(
        "companies:\n  - { company: Contoso, tenant: new }\n  - { company: contoso, tenant: none }\n",
    );
    refused(&w, &yaml, &["\"contoso\"", "more than once"]).await;
    // an id outside [a-z0-9-]
    let yaml = w.partner_yaml("").replace("id: acme", "id: Demo_MSP");
    let file = write_file("partner.yaml", &yaml);
    let (code, _, err) = cli(&w, &["partner", "apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("Demo_MSP"), "{err}");
    assert_eq!(w.ctx.store.partner("Demo_MSP").await.unwrap(), None);
    // and no secret is named after it either
    let (code, _, err) = cli(
        &w,
        &[
            "credentials",
            "set",
            "--partner",
            "Demo_MSP",
            "--cw-site",
            "x.example",
            "--cw-company",
            "c",
            "--cw-public-key",
            "p",
            "--cw-private-key",
            "k",
            "--cw-client-id",
            "i",
            "--platform-url",
            "https://eu2.example",
            "--platform-client-id",
            "i",
            "--platform-client-secret",
            "s",
        ],
    )
    .await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("partner id \"Demo_MSP\""), "{err}");
}

// R-SET-3
#[tokio::test]
async fn cli_reaches_an_autotask_zone_given_by_autotask_url() {
    let w = World::bare().await;
    w.sandbox
        .autotask
        .add_api_user("api@acme-msp.example", "at-Secret-1", "INTEGRATION-CODE-1");
    let (code, out, err) = cli(
        &w,
        &[
            "credentials",
            "set",
            "--partner",
            "acme-at",
            "--psa",
            "autotask",
            "--at-username",
            "api@acme-msp.example",
            "--at-secret",
            "at-Secret-1",
            "--at-integration-code",
            "INTEGRATION-CODE-1",
            "--platform-url",
            &w.sandbox.platform.url(),
            "--platform-client-id",
            &w.account.client_id,
            "--platform-client-secret",
            &w.account.client_secret,
        ],
    )
    .await;
    assert_eq!(code, exit::OK, "{out}{err}");
    assert!(out.contains("both log-ins work"), "{out}");
    assert!(!out.contains("at-Secret-1") && !err.contains("at-Secret-1"));
}

#[tokio::test]
async fn cli_credentials_test_and_partner_show() {
    let w = World::new().await;
    let (code, out, err) = cli(&w, &["credentials", "test", "--partner", PARTNER]).await;
    assert_eq!(code, exit::OK, "{err}");
    assert!(out.contains("log-ins work"), "{out}");
    let (code, out, _) = cli(&w, &["partner", "show", "--partner", PARTNER]).await;
    assert_eq!(code, exit::OK);
    assert!(out.contains("ACR-WS") && out.contains("Acme MSP"), "{out}");
    let (code, _, err) = cli(&w, &["partner", "show", "--partner", "nobody"]).await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("unknown partner"), "{err}");
}

#[tokio::test]
async fn cli_rules_prints_what_a_rule_decides() {
    let w = World::bare().await;
    let (code, out, _) = cli(&w, &["rules", "R-PROV-4"]).await;
    assert_eq!(code, exit::OK);
    assert!(out.contains("R-PROV-4"), "{out}");
    assert!(out.to_lowercase().contains("soft quota"), "{out}");
    let (code, out, _) = cli(&w, &["rules", "r-prov-4"]).await;
    assert_eq!(code, exit::OK, "IDs are case-insensitive: {out}");
    let (code, _, err) = cli(&w, &["rules", "R-NOPE-9"]).await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("R-NOPE-9"), "{err}");
    let (code, out, _) = cli(&w, &["rules"]).await;
    assert_eq!(code, exit::OK);
    assert!(
        out.contains("R-PROV-10") && out.contains("R-MAP-6"),
        "{out}"
    );
    let (code, out, _) = cli(&w, &["completions", "bash"]).await;
    assert_eq!(code, exit::OK);
    assert!(out.contains("psa-bridge"), "{out}");
}

// R-USE-4 R-USE-8
#[tokio::test]
async fn cli_publish_dry_run_then_publish_then_history() {
    let w = World::new().await;
    let (company, a) = w.customer("Usage Co");
    let ws = w.addition(a, w.products.ws, 0.0, None);
    let (code, out, err) = cli(&w, &["sync", "--partner", PARTNER, "--full", "--now", NOW]).await;
    assert_eq!(code, exit::OK, "{out}{err}");
    let tenant = w.tenant_of(company).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.sandbox
        .platform
        .set_usage(&tenant, "workstations", None, 5.0);
    let qty = || {
        w.sandbox
            .connectwise
            .addition(CW_COMPANY, a, ws)
            .unwrap()
            .quantity
    };
    let company = company.to_string();
    // A dry run shows old → new with the rule and writes nothing, nor the history.
    let (code, out, err) = cli(
        &w,
        &[
            "publish",
            "--partner",
            PARTNER,
            "--companies",
            &company,
            "--dry-run",
            "--initiator",
            "ops",
        ],
    )
    .await;
    assert_eq!(code, exit::OK, "{out}{err}");
    assert!(
        out.contains("0 → 5 [R-USE-1]") && out.contains("dry run"),
        "{out}"
    );
    assert_eq!(qty(), 0.0);
    let (_, out, _) = cli(&w, &["history", "--partner", PARTNER]).await;
    assert!(out.contains("no publish yet"), "{out}");
    // For real.
    let (code, out, err) = cli(&w, &["publish", "--partner", PARTNER, "--initiator", "ops"]).await;
    assert_eq!(code, exit::OK, "{out}{err}");
    assert_eq!(qty(), 5.0);
    let (code, out, _) = cli(&w, &["history", "--partner", PARTNER]).await;
    assert_eq!(code, exit::OK);
    assert!(
        out.contains("manual publish of") && out.contains("by ops"),
        "{out}"
    );
    // Bad input is named; nothing is written.
    let (code, _, err) = cli(
        &w,
        &["publish", "--partner", PARTNER, "--period", "2026-13"],
    )
    .await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("\"2026-13\""), "{err}");
    let (code, _, err) = cli(
        &w,
        &["publish", "--partner", PARTNER, "--companies", "424242"],
    )
    .await;
    assert_eq!(code, exit::FAILED);
    assert!(err.contains("\"424242\": not mapped to a tenant"), "{err}");
}
