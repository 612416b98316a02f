//! The CLI's dispatch: parse, wire, call a service, present. Every operation is a function of
//! `domain::services`; this module only builds its ports and prints what it returns.

use crate::args::{
    AwsArgs, Cli, Command, CompaniesCmd, CredentialsCmd, Output, PartnerCmd, PsaArg,
    SetCredentials, WebhooksCmd,
};
use crate::wiring::{self, Ctx, Target};
use crate::{exit, present};
use adapters::aws::Resources;
use adapters::http::HttpSettings;
use anyhow::{anyhow, Context, Result};
use clap::{CommandFactory, Parser};
use domain::ports::{Clock, FixedClock, SystemClock};
use domain::rules::companies::{CompanyFilter, MappingRequest};
use domain::rules::settings::{
    AutotaskCredentials, ConnectWiseCredentials, PlatformCredentials, PsaCredentials,
};
use domain::services::{companies, partners, publish, status, sync};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

fn target(a: &AwsArgs) -> Target {
    Target {
        resources: Resources {
            table: a.table.clone(),
            bus: a.bus.clone(),
            secret_prefix: a.secret_prefix.clone(),
        },
        endpoint_url: a.endpoint_url.clone(),
        autotask_url: a.autotask_url.clone(),
    }
}

async fn ctx_with(a: &AwsArgs, http: &HttpSettings, clock: Arc<dyn Clock>) -> Ctx {
    let t = target(a);
    let aws = wiring::aws(&t).await;
    wiring::ctx(&aws, http, wiring::autotask(&t, clock))
}

async fn ctx(a: &AwsArgs) -> Ctx {
    ctx_with(a, &HttpSettings::default(), Arc::new(SystemClock)).await
}

/// Runs the CLI on `args` (the program name first), printing results to `out` and errors to
/// `err`; returns the exit status ([`crate::exit`]).
pub async fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                write!(err, "{text}")
            } else {
                write!(out, "{text}")
            };
            return code;
        }
    };
    match dispatch(cli, out).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            exit::FAILED
        }
    }
}

async fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    match cli.command {
        Command::Local {
            once,
            cw_port,
            platform_port,
        } => {
            crate::local::run(crate::local::LocalArgs {
                once,
                cw_port,
                platform_port,
            })
            .await?;
            Ok(exit::OK)
        }
        Command::Partner(PartnerCmd::Apply { file }) => {
            let yaml = read_partner_file(&file)?;
            let c = ctx(&cli.aws).await;
            let applied = partners::apply(c.store.as_ref(), c.connector.as_ref(), &yaml).await?;
            present::applied(out, &applied)?;
            Ok(exit::OK)
        }
        Command::Partner(PartnerCmd::Show { partner, output }) => {
            let c = ctx(&cli.aws).await;
            let p = partners::partner(c.store.as_ref(), &partner).await?;
            match output {
                Output::Json => present::json(out, &p)?,
                Output::Table => present::partner(out, &p)?,
            }
            Ok(exit::OK)
        }
        Command::Credentials(cmd) => match *cmd {
            CredentialsCmd::Set(set) => {
                let (partner, platform_url, psa, platform) = credentials(*set)?;
                let c = ctx(&cli.aws).await;
                let tenant = partners::set_credentials(
                    c.connector.as_ref(),
                    c.secrets.as_ref(),
                    &partner,
                    &platform_url,
                    psa,
                    platform,
                )
                .await?;
                writeln!(out, "partner {partner}: both log-ins work (platform API client acts for tenant {tenant}); credentials stored")?;
                Ok(exit::OK)
            }
            CredentialsCmd::Test { partner } => {
                let c = ctx(&cli.aws).await;
                let ok =
                    partners::test_credentials(c.store.as_ref(), c.connector.as_ref(), &partner)
                        .await?;
                writeln!(
                    out,
                    "partner {}: {} and platform log-ins work (platform API client acts for tenant {})",
                    ok.partner, ok.psa, ok.partner_tenant
                )?;
                Ok(exit::OK)
            }
        },
        Command::Companies(CompaniesCmd::List {
            partner,
            mapped,
            unmapped,
            company_type,
            search,
            output,
        }) => {
            let filter = CompanyFilter {
                mapped: if mapped {
                    Some(true)
                } else if unmapped {
                    Some(false)
                } else {
                    None
                },
                company_type,
                search,
            };
            let c = ctx(&cli.aws).await;
            let rows =
                companies::list(c.store.as_ref(), c.connector.as_ref(), &partner, &filter).await?;
            match output {
                Output::Json => present::json(out, &rows)?,
                Output::Table => present::companies(out, &rows)?,
            }
            Ok(exit::OK)
        }
        Command::Companies(CompaniesCmd::Map {
            partner,
            company,
            tenant,
        }) => {
            let request = match tenant.trim() {
                "new" => MappingRequest::New,
                t => MappingRequest::Existing(t.to_owned()),
            };
            map_company(&cli.aws, out, &partner, &company, &request).await
        }
        Command::Companies(CompaniesCmd::Unmap { partner, company }) => {
            map_company(&cli.aws, out, &partner, &company, &MappingRequest::Remove).await
        }
        Command::Sync {
            partner,
            company,
            full,
            dry_run,
            force,
            output,
            concurrency,
            now,
        } => {
            // A run pinned to an instant is pinned everywhere, Autotask's current units included.
            let clock: Arc<dyn Clock> = match now {
                Some(t) => Arc::new(FixedClock(t)),
                None => Arc::new(SystemClock),
            };
            let http = HttpSettings {
                concurrency,
                ..HttpSettings::default()
            };
            let c = ctx_with(&cli.aws, &http, clock.clone()).await;
            let req = sync::SyncRequest {
                partner: partner.clone(),
                scope: match (company, full) {
                    (Some(c), _) => sync::Scope::Company(c),
                    (None, true) => sync::Scope::Full,
                    (None, false) => sync::Scope::Incremental,
                },
                dry_run,
                force,
                concurrency,
                full_sync_hours: None,
            };
            let spinner = std::io::stderr().is_terminal().then(|| {
                let pb = indicatif::ProgressBar::new_spinner();
                pb.set_message(format!("syncing partner {partner}…"));
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                pb
            });
            let report = sync::sync_partner(
                c.store.as_ref(),
                c.events.as_ref(),
                c.connector.as_ref(),
                &req,
                clock.now(),
            )
            .await;
            if let Some(pb) = spinner {
                pb.finish_and_clear();
            }
            let report = report?;
            match output {
                Output::Json => present::json(out, &report)?,
                Output::Table => present::sync(out, &report)?,
            }
            Ok(exit::of_sync(&report))
        }
        Command::Bench {
            psa,
            companies,
            latency_ms,
            concurrency,
            json,
        } => {
            let rows = crate::bench::run(crate::bench::BenchArgs {
                psa: psa_kind(psa),
                sizes: companies,
                latency_ms,
                concurrency,
            })
            .await?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
            }
            present::bench(out, psa == PsaArg::Autotask, &rows)?;
            Ok(exit::OK)
        }
        Command::Status { partner, output } => {
            let c = ctx(&cli.aws).await;
            let st = status::status(c.store.as_ref(), &partner).await?;
            match output {
                Output::Json => present::json(out, &st)?,
                Output::Table => present::status(out, &st)?,
            }
            Ok(exit::OK)
        }
        Command::Publish {
            partner,
            companies,
            period,
            dry_run,
            initiator,
            output,
            concurrency,
        } => {
            let period = period
                .as_deref()
                .map(domain::rules::schedule::parse_month)
                .transpose()
                .map_err(|e| anyhow!(e))?
                .map(publish::PublishPeriod::from);
            let http = HttpSettings {
                concurrency,
                ..HttpSettings::default()
            };
            let c = ctx_with(&cli.aws, &http, Arc::new(SystemClock)).await;
            let initiator = initiator
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "psa-bridge CLI".into());
            let req = publish::PublishRequest {
                partner,
                trigger: domain::ports::PublishTrigger::Manual { initiator },
                period,
                options: publish::PublishOptions {
                    companies,
                    dry_run,
                    concurrency,
                },
            };
            let now = SystemClock.now();
            let run_id = format!("cli-{}-{}", now.timestamp_millis(), std::process::id());
            let rec = publish::publish_now(
                c.store.as_ref(),
                c.events.as_ref(),
                c.connector.as_ref(),
                &req,
                now,
                &run_id,
            )
            .await?;
            match output {
                Output::Json => present::json(out, &rec)?,
                Output::Table => present::publish(out, &rec)?,
            }
            Ok(exit::of_publish(&rec))
        }
        Command::History { partner, output } => {
            let c = ctx(&cli.aws).await;
            let h = publish::history(c.store.as_ref(), &partner).await?;
            match output {
                Output::Json => present::json(out, &h)?,
                Output::Table => {
                    for rec in &h {
                        present::publish(out, rec)?;
                    }
                    if h.is_empty() {
                        writeln!(out, "partner {partner}: no publish yet")?;
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Webhooks(WebhooksCmd::RotateToken {
            partner,
            base_url,
            output,
        }) => {
            let c = ctx(&cli.aws).await;
            let fresh = domain::services::webhooks::FreshSecrets {
                token: adapters::secrets::random_secret(32),
                autotask_secret: adapters::secrets::random_secret(32),
            };
            let r = domain::services::webhooks::rotate_token(
                c.store.as_ref(),
                c.secrets.as_ref(),
                c.hooks.as_ref(),
                &partner,
                fresh,
            )
            .await?;
            match output {
                Output::Json => present::json(out, &r)?,
                Output::Table => present::rotated(out, &r, base_url.as_deref())?,
            }
            Ok(exit::OK)
        }
        Command::Rules { id } => present::rules(out, id.as_deref()),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "psa-bridge", out);
            Ok(exit::OK)
        }
    }
}

/// Partner files are small: a larger one is refused before it is read.
const MAX_FILE_BYTES: u64 = 256 * 1024;

fn read_partner_file(file: &std::path::Path) -> Result<String> {
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(anyhow!(
            "{}: {} bytes; a partner file may have at most {} bytes",
            file.display(),
            meta.len(),
            MAX_FILE_BYTES
        ));
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

async fn map_company(
    aws: &AwsArgs,
    out: &mut dyn Write,
    partner: &str,
    company: &str,
    request: &MappingRequest,
) -> Result<i32> {
    let c = ctx(aws).await;
    match companies::map(
        c.store.as_ref(),
        c.connector.as_ref(),
        partner,
        company,
        request,
    )
    .await?
    {
        Some(rec) => writeln!(
            out,
            "partner {partner}: company {company} is now {}",
            present::mapping(&rec.mapping)
        )?,
        None => writeln!(out, "partner {partner}: company {company} unchanged")?,
    }
    Ok(exit::OK)
}

fn psa_kind(p: PsaArg) -> domain::model::PsaKind {
    match p {
        PsaArg::Connectwise => domain::model::PsaKind::Connectwise,
        PsaArg::Autotask => domain::model::PsaKind::Autotask,
    }
}

/// The credentials `credentials set` was given, or what is missing.
fn credentials(s: SetCredentials) -> Result<(String, String, PsaCredentials, PlatformCredentials)> {
    let need =
        |v: Option<String>, what: &str| v.ok_or_else(|| anyhow!("{what} is required for this PSA"));
    let psa = match s.psa {
        PsaArg::Connectwise => PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: need(s.cw_site, "--cw-site")?,
            company_id: need(s.cw_company, "--cw-company")?,
            public_key: need(
                s.cw_public_key,
                "PSA_BRIDGE_CW_PUBLIC_KEY (or --cw-public-key)",
            )?
            .into(),
            private_key: need(
                s.cw_private_key,
                "PSA_BRIDGE_CW_PRIVATE_KEY (or --cw-private-key)",
            )?
            .into(),
            client_id: need(s.cw_client_id, "--cw-client-id")?,
        }),
        PsaArg::Autotask => PsaCredentials::Autotask(AutotaskCredentials {
            username: need(s.at_username, "--at-username")?,
            secret: need(s.at_secret, "PSA_BRIDGE_AT_SECRET (or --at-secret)")?.into(),
            integration_code: need(
                s.at_integration_code,
                "PSA_BRIDGE_AT_INTEGRATION_CODE (or --at-integration-code)",
            )?
            .into(),
        }),
    };
    Ok((
        s.partner,
        s.platform_url,
        psa,
        PlatformCredentials {
            client_id: s.platform_client_id,
            client_secret: s.platform_client_secret.into(),
        },
    ))
}
