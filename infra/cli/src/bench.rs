//! `psa-bridge bench`: sync-tenant at scale against the sandbox with added latency.
//!
//! The driver (this process) runs moto and the sandbox; every measured pass is a separate
//! child process (`psa-bridge sync …`, the same code Lambda runs), so its wall time and peak
//! RSS are its own. Requests are counted by the sandbox, per system.

use crate::localstack::{create_resources, Moto};
use crate::ops::{self, Ctx};
use adapters::aws::{local_sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::{HttpSettings, RetryPolicy};
use anyhow::{bail, Context, Result};
use chrono::{Duration, TimeZone, Utc};
use domain::ports::Secrets;
use domain::rules::settings::{ConnectWiseCredentials, PlatformCredentials, PsaCredentials};
use sandbox::{NewAddition, NewAgreement, NewCompany, Sandbox};
use serde::Serialize;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

pub struct BenchArgs {
    pub sizes: Vec<usize>,
    pub latency_ms: u64,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub companies: usize,
    pub pass: &'static str,
    pub psa_requests: u64,
    pub platform_requests: u64,
    pub platform_writes: u64,
    pub wall_s: f64,
    /// requests × latency / concurrency: the floor the wall time is held to (≤ 1.25×).
    pub floor_s: f64,
    pub peak_rss_mb: f64,
    pub max_in_flight: usize,
}

const CW: &str = "benchmsp";

/// The child's peak RSS, printed by `psa-bridge` when `PSA_BRIDGE_REPORT_RSS` is set.
pub fn report_rss() {
    if std::env::var_os("PSA_BRIDGE_REPORT_RSS").is_none() {
        return;
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:")) {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            eprintln!("peak_rss_kb={kb}");
        }
    }
}

pub async fn run(args: BenchArgs) -> Result<Vec<Row>> {
    let moto = Moto::start().await?;
    let sdk = local_sdk_config(&moto.endpoint).await;
    let sb = Sandbox::start().await?;
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    for (i, &n) in args.sizes.iter().enumerate() {
        let partner = format!("bench{n}");
        let resources = Resources {
            table: format!("psa-bridge-bench-{i}"),
            bus: format!("psa-bridge-bench-{i}"),
            secret_prefix: "psa-bridge/".into(),
        };
        create_resources(&sdk, &resources).await?;
        let aws = AwsAdapters::new(&sdk, &resources);
        let login = format!("{CW}{n}");
        let cw = &sb.connectwise;
        cw.set_now(t0);
        sb.platform.set_now(t0);
        cw.add_instance(&login, "bench-public", "bench-private");
        let ws = cw.add_product(&login, "ACR-WS", "workstation");
        cw.add_product(&login, "ACR-SRV", "server");
        let stor = cw.add_product(&login, "ACR-STOR", "storage");
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut first = None;
        for c in 0..n {
            let company = cw.add_company(
                &login,
                NewCompany {
                    identifier: format!("C{c:05}"),
                    name: format!("Customer {c:05}"),
                    type_name: Some("Customer".into()),
                    ..Default::default()
                },
            );
            let a = cw.add_agreement(
                &login,
                NewAgreement {
                    company_id: company,
                    name: "Backup".into(),
                    start_date: Some(start),
                    no_ending_date_flag: true,
                    ..Default::default()
                },
            );
            let payg = cw.add_addition(
                &login,
                a,
                NewAddition {
                    product_id: ws,
                    quantity: 0.0,
                    less_included: 0.0,
                    effective_date: Some(start),
                    cancelled_date: None,
                },
            );
            cw.add_addition(
                &login,
                a,
                NewAddition {
                    product_id: stor,
                    quantity: 100.0,
                    less_included: 0.0,
                    effective_date: Some(start),
                    cancelled_date: Some(Utc.with_ymd_and_hms(2027, 12, 31, 0, 0, 0).unwrap()),
                },
            );
            first.get_or_insert((a, payg));
        }
        let account = sb.platform.add_partner(&format!("Bench {n}"));
        let http = HttpSettings {
            retry: RetryPolicy::quick(),
            ..HttpSettings::default()
        };
        let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
        let ctx = Ctx {
            store: Arc::new(aws.store.clone()),
            connector: Arc::new(VendorConnector::new(secrets.clone(), http.clone())),
            secrets,
            http,
            autotask: adapters::autotask::AutotaskConfig::from_env(),
        };
        ops::set_credentials(
            &ctx,
            &partner,
            &sb.platform.url(),
            PsaCredentials::ConnectWise(ConnectWiseCredentials {
                site: sb.connectwise.url(),
                company_id: login.clone(),
                public_key: "bench-public".to_owned().into(),
                private_key: "bench-private".to_owned().into(),
                client_id: "0b4d6a6e-3c55-4a4e-9d53-3d1d0f6b1c11".into(),
            }),
            PlatformCredentials {
                client_id: account.client_id.clone(),
                client_secret: account.client_secret.clone().into(),
            },
        )
        .await?;
        ops::apply_partner(
            &ctx,
            &format!(
                "id: {partner}\npsa: connectwise\nplatform: {{ url: \"{}\" }}\nprovisioning: {{ auto_create: true, activation_email: false }}\nguard: {{ max_zero_share: 1.0 }}\nproducts:\n  - {{ item: workstations, product: ACR-WS }}\n  - {{ item: servers, product: ACR-SRV }}\n  - {{ item: storage, location: Cloud storage, product: ACR-STOR, default: true }}\n",
                sb.platform.url()
            ),
        )
        .await?;

        let latency = std::time::Duration::from_millis(args.latency_ms);
        let (a0, payg0) = first.expect("at least one company");
        let mut clock = t0;
        let steps: [(&'static str, &[&str]); 4] = [
            ("first sync (full, creates every tenant)", &["--full"]),
            ("incremental, no change", &[]),
            ("full pass, no change", &["--full"]),
            ("incremental, one company changed", &[]),
        ];
        for (pass, extra) in steps {
            clock += Duration::minutes(15);
            if pass.contains("one company changed") {
                cw.set_now(clock - Duration::minutes(1));
                cw.update_addition(&login, a0, payg0, |a| {
                    a.cancelled_date = Some(Utc.with_ymd_and_hms(2027, 6, 30, 0, 0, 0).unwrap())
                });
                cw.update_agreement(&login, a0, |a| a.name = "Backup (changed)".into());
            }
            cw.set_now(clock);
            sb.platform.set_now(clock);
            for f in [sb.connectwise.faults(), sb.platform.faults()] {
                f.set_latency(latency);
            }
            sb.connectwise.reset_stats();
            sb.platform.reset_stats();
            let started = Instant::now();
            let out = tokio::process::Command::new(&exe)
                .args([
                    "--endpoint-url",
                    &moto.endpoint,
                    "--table",
                    &resources.table,
                    "--bus",
                    &resources.bus,
                    "sync",
                    "--partner",
                    &partner,
                    "--output",
                    "json",
                    "--concurrency",
                    &args.concurrency.to_string(),
                    "--now",
                    &clock.to_rfc3339(),
                ])
                .args(extra)
                .env("PSA_BRIDGE_REPORT_RSS", "1")
                .stdin(Stdio::null())
                .output()
                .await
                .context("running the measured sync")?;
            let wall = started.elapsed().as_secs_f64();
            for f in [sb.connectwise.faults(), sb.platform.faults()] {
                f.set_latency(std::time::Duration::ZERO);
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                bail!("{pass} at {n} companies failed: {stderr}");
            }
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).with_context(|| {
                    format!("sync output: {}", String::from_utf8_lossy(&out.stdout))
                })?;
            if report["failures"].as_array().is_some_and(|f| !f.is_empty()) {
                bail!(
                    "{pass} at {n} companies had failures: {}",
                    report["failures"]
                );
            }
            let rss_kb: f64 = stderr
                .lines()
                .find_map(|l| l.strip_prefix("peak_rss_kb="))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0);
            let (cs, ps) = (sb.connectwise.stats(), sb.platform.stats());
            let requests = cs.requests + ps.requests;
            let row = Row {
                companies: n,
                pass,
                psa_requests: cs.requests,
                platform_requests: ps.requests,
                platform_writes: ps.writes,
                wall_s: wall,
                floor_s: requests as f64 * args.latency_ms as f64
                    / 1000.0
                    / args.concurrency as f64,
                peak_rss_mb: rss_kb / 1024.0,
                max_in_flight: cs.max_in_flight.max(ps.max_in_flight),
            };
            eprintln!(
                "{n:>6} companies | {pass:<42} | PSA {:>6} | platform {:>6} (writes {:>5}) | {:>7.2} s (floor {:>6.2} s, {:.2}x) | {:>5.1} MB",
                row.psa_requests,
                row.platform_requests,
                row.platform_writes,
                row.wall_s,
                row.floor_s,
                row.wall_s / row.floor_s.max(1e-9),
                row.peak_rss_mb
            );
            rows.push(row);
        }
    }
    Ok(rows)
}
