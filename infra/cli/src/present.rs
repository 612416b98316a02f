//! How the CLI prints what the services return.

use crate::exit;
use anyhow::Result;
use domain::model::{Mapping, Partner};
use domain::rules::companies::CompanyRow;
use domain::services::partners::Applied;
use domain::services::status::StatusView;
use domain::services::sync::SyncReport;
use std::io::Write;

pub fn json(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

pub fn applied(out: &mut dyn Write, a: &Applied) -> Result<()> {
    writeln!(
        out,
        "partner {}: settings {}; {} company mapping(s) changed",
        a.partner,
        if a.settings_changed {
            "saved"
        } else {
            "unchanged"
        },
        a.companies_changed.len()
    )?;
    Ok(())
}

pub fn mapping(m: &Mapping) -> String {
    match m {
        Mapping::Unmapped => "-".to_owned(),
        Mapping::NewTenant => "new tenant (next sync)".to_owned(),
        Mapping::Tenant(t) => t.clone(),
    }
}

pub fn partner(out: &mut dyn Write, p: &Partner) -> Result<()> {
    writeln!(
        out,
        "partner {} — {} ({}), enabled: {}",
        p.id, p.name, p.psa, p.enabled
    )?;
    writeln!(
        out,
        "platform: {} (partner tenant {})",
        p.platform_url, p.partner_tenant_id
    )?;
    writeln!(
        out,
        "time zone: {}; full pass every {} h; every line re-read within {} h",
        p.time_zone, p.full_sync_hours, p.line_refresh_hours
    )?;
    writeln!(
        out,
        "switches: provisioning {}, two-way sync {}, tickets {}, usage {}",
        p.switches.provisioning, p.switches.two_way_sync, p.switches.tickets, p.switches.usage
    )?;
    writeln!(out, "products:")?;
    for m in &p.mapping.items {
        writeln!(
            out,
            "  {:<40} -> {}{}",
            m.item.to_string(),
            m.product.as_ref().map_or_else(
                || "(no product)".to_owned(),
                |r| format!("{} ({})", r.identifier, r.id)
            ),
            if m.free { ", free" } else { "" }
        )?;
    }
    writeln!(
        out,
        "(stored version {}; `--output json` shows every setting)",
        p.version
    )?;
    Ok(())
}

pub fn companies(out: &mut dyn Write, rows: &[CompanyRow]) -> Result<()> {
    writeln!(
        out,
        "{:<8} {:<20} {:<30} {:<40} LAST SYNC / ERROR",
        "ID", "IDENTIFIER", "NAME", "MAPPING"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<8} {:<20} {:<30} {:<40} {}",
            r.id,
            r.identifier,
            r.name,
            mapping(&r.mapping),
            r.last_error
                .clone()
                .or_else(|| r.last_sync.map(|t| t.to_rfc3339()))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

pub fn sync(out: &mut dyn Write, r: &SyncReport) -> Result<()> {
    writeln!(
        out,
        "partner {}: {} pass{} — {} companies, {} changes{}, {} failed",
        r.partner,
        r.scope,
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
        r.companies,
        r.plan.changes.len(),
        if r.dry_run {
            String::new()
        } else {
            format!(" ({} applied)", r.applied)
        },
        r.failures.len()
    )?;
    if let Some(b) = &r.blocked {
        writeln!(out, "BLOCKED: {b}")?;
    }
    if let Some(f) = &r.folded {
        writeln!(out, "FOLDED: {f}")?;
    }
    if let Some(l) = &r.line_refresh {
        writeln!(
            out,
            "{}: {} of {} mapped companies' lines re-read (each within {} h)",
            l.reason,
            l.companies.len(),
            l.mapped,
            l.every_hours
        )?;
    }
    for c in &r.plan.changes {
        writeln!(out, "  {}", c.describe())?;
    }
    for f in &r.failures {
        writeln!(out, "  ! {}", f.reason)?;
    }
    Ok(())
}

pub fn bench(out: &mut dyn Write, autotask: bool, rows: &[crate::bench::Row]) -> Result<()> {
    writeln!(
        out,
        "| companies | pass | PSA requests{} | platform requests (writes) | wall s | floor s | ratio | peak RSS MB |",
        if autotask { " (counted) | most per endpoint" } else { "" }
    )?;
    writeln!(
        out,
        "|---:|---|---:|{}---:|---:|---:|---:|---:|",
        if autotask { "---:|" } else { "" }
    )?;
    for r in rows {
        let psa_cell = match (r.psa_threshold_requests, r.psa_max_per_endpoint) {
            (Some(c), m) => format!("{} ({c}) | {}", r.psa_requests, m.unwrap_or(0)),
            _ => r.psa_requests.to_string(),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.companies,
            r.pass,
            psa_cell,
            r.platform_requests,
            r.platform_writes,
            r.wall_s,
            r.floor_s,
            r.wall_s / r.floor_s.max(1e-9),
            r.peak_rss_mb
        )?;
    }
    Ok(())
}

pub fn status(out: &mut dyn Write, st: &StatusView) -> Result<()> {
    writeln!(
        out,
        "partner {} ({}), enabled: {}",
        st.partner, st.psa, st.enabled
    )?;
    writeln!(
        out,
        "switches: provisioning {}, two-way sync {}, tickets {}, usage {}",
        st.switches.provisioning, st.switches.two_way_sync, st.switches.tickets, st.switches.usage
    )?;
    match &st.mapping_usable {
        Ok(()) => writeln!(out, "product mapping: usable")?,
        Err(e) => writeln!(out, "product mapping: {e}")?,
    }
    match &st.status.credentials {
        Some(c) if c.ok => writeln!(out, "credentials: ok (checked {})", c.checked_at)?,
        Some(c) => writeln!(
            out,
            "credentials: FAILING since {} — {}",
            c.checked_at,
            c.problem.clone().unwrap_or_default()
        )?,
        None => writeln!(out, "credentials: not used yet")?,
    }
    match &st.status.last_sync {
        Some(s) => writeln!(
            out,
            "last sync: {} pass at {}: {} companies, {} applied, {} failed{}",
            s.scope,
            s.finished_at,
            s.companies,
            s.applied,
            s.failed,
            s.blocked
                .as_ref()
                .map(|b| format!(", blocked: {b}"))
                .unwrap_or_default()
        )?,
        None => writeln!(out, "last sync: never")?,
    }
    writeln!(
        out,
        "companies: {} mapped, {} waiting for a new tenant",
        st.companies_mapped, st.companies_to_create
    )?;
    for (c, e) in &st.failing {
        writeln!(out, "  ! company {c}: {e}")?;
    }
    Ok(())
}

/// `rules [ID]`: what each rule decides, from the rules' own doc comments.
pub fn rules(out: &mut dyn Write, id: Option<&str>) -> Result<i32> {
    let Some(id) = id else {
        for d in domain::rules::catalog() {
            writeln!(out, "{:<10} {}  [{}]", d.id, d.summary, d.source)?;
        }
        return Ok(exit::OK);
    };
    let docs = domain::rules::rule(id).ok_or_else(|| {
        anyhow::anyhow!("no rule {id:?} is documented; `psa-bridge rules` lists every rule ID")
    })?;
    for d in docs {
        writeln!(out, "{} — {}", d.id, d.source)?;
        for line in d.text.lines() {
            writeln!(out, "    {line}")?;
        }
        writeln!(out)?;
    }
    Ok(exit::OK)
}

/// One publish: its result, then per company every line old → new with its rule, the lines
/// left alone with why, or the company's error.
pub fn publish(out: &mut dyn Write, r: &domain::ports::PublishRecord) -> Result<()> {
    writeln!(
        out,
        "{} publish of {} by {} at {}: {:?}{}{}",
        match r.trigger {
            domain::ports::PublishTrigger::Schedule => "automatic",
            domain::ports::PublishTrigger::Manual { .. } => "manual",
        },
        r.period,
        r.trigger.initiator(),
        r.started_at.format("%Y-%m-%d %H:%M UTC"),
        r.result,
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
        r.error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default(),
    )?;
    for c in &r.companies {
        writeln!(
            out,
            "  {} {} (tenant {})",
            c.company_id, c.name, c.tenant_id
        )?;
        for l in &c.lines {
            match (&l.untouched, l.old, l.new) {
                (Some(why), _, _) => writeln!(
                    out,
                    "    line {} {}: left alone — {why} [{}]",
                    l.line_id, l.item, l.rule
                )?,
                (None, old, Some(new)) => writeln!(
                    out,
                    "    line {} {}: {} → {new} [{}]",
                    l.line_id,
                    l.item,
                    old.map(|o| o.to_string()).unwrap_or_else(|| "?".into()),
                    l.rule
                )?,
                _ => {}
            }
        }
        if let Some(e) = &c.error {
            writeln!(out, "    ! {e}")?;
        }
    }
    if r.omitted > 0 {
        writeln!(
            out,
            "  … {} more companies not kept in the history",
            r.omitted
        )?;
    }
    Ok(())
}

/// A rotated webhook token: the endpoint URLs (or paths, without a base URL), shown once.
pub fn rotated(
    out: &mut dyn Write,
    r: &domain::services::webhooks::Rotated,
    base_url: Option<&str>,
) -> Result<()> {
    writeln!(
        out,
        "partner {}: new webhook token (shown once; only its hash is stored)",
        r.partner
    )?;
    for p in &r.paths {
        match base_url {
            // The base URL ends in /hooks, as the stack output does.
            Some(b) => writeln!(
                out,
                "  {}{}",
                b.trim_end_matches('/').trim_end_matches("/hooks"),
                p
            )?,
            None => writeln!(out, "  {p}")?,
        }
    }
    writeln!(
        out,
        "Register the PSA's callbacks again: their URLs carry the token."
    )?;
    Ok(())
}
