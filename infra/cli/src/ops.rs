//! What the operator CLI does, as functions over the ports: the CLI parses arguments and prints;
//! tests call these directly. Every operation checks everything before it writes anything.

use adapters::autotask::AutotaskConfig;
use adapters::connector::clients_from_with;
use adapters::http::HttpSettings;
use anyhow::{anyhow, bail, Context, Result};
use domain::config::{self, PartnerSpec};
use domain::model::{CompanyRecord, Mapping, Partner, PsaCompany};
use domain::ports::{CompanyQuery, Connector, PartnerClients, PartnerStatus, Secrets, Store};
use domain::rules::companies::{self, CompanyFilter, CompanyRow};
use domain::rules::settings::{check_psa_credentials, PlatformCredentials, PsaCredentials};
use domain::services::sync;
use serde::Serialize;
use std::sync::Arc;

/// The adapters an operation needs.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub connector: Arc<dyn Connector>,
    pub http: HttpSettings,
    /// Where Autotask zones are discovered, the PAYG field, the request economy.
    pub autotask: AutotaskConfig,
}

/// A partner as far as credentials go: enough to reach both systems.
fn probe_partner(id: &str, psa: &PsaCredentials, platform_url: &str) -> Partner {
    Partner {
        id: id.to_owned(),
        name: id.to_owned(),
        psa: psa.kind(),
        enabled: true,
        platform_url: platform_url.trim_end_matches('/').to_owned(),
        partner_tenant_id: String::new(),
        switches: Default::default(),
        provisioning: Default::default(),
        guard: Default::default(),
        mapping: Default::default(),
        two_way: Default::default(),
        autotask: Default::default(),
        time_zone: "UTC".into(),
        full_sync_hours: 24,
        version: 0,
    }
}

/// `credentials set`: logs in to the PSA and the platform with the given credentials and stores
/// them only when both work (R-SET-3, R-SET-4). Returns the partner tenant the API client acts for.
pub async fn set_credentials(
    ctx: &Ctx,
    partner: &str,
    platform_url: &str,
    psa: PsaCredentials,
    platform: PlatformCredentials,
) -> Result<String> {
    if let Err(problems) = check_psa_credentials(&psa) {
        bail!("partner {partner}: {}", problems.join("; "));
    }
    if platform.client_id.trim().is_empty() {
        bail!("partner {partner}: platform client id is empty");
    }
    let probe = probe_partner(partner, &psa, platform_url);
    let clients = clients_from_with(
        &probe,
        &psa,
        &platform,
        adapters::http::client(ctx.http.timeout),
        &ctx.http,
        &ctx.autotask,
    )
    .map_err(|e| anyhow!("partner {partner}: {e}"))?;
    clients.psa.check_login().await.map_err(|e| {
        anyhow!(
            "partner {partner}: {} log-in failed, nothing was stored: {e}",
            psa.kind()
        )
    })?;
    let tenant = clients.platform.check_login().await.map_err(|e| {
        anyhow!("partner {partner}: platform log-in failed, nothing was stored: {e}")
    })?;
    ctx.secrets
        .put_psa(partner, &psa)
        .await
        .map_err(|e| anyhow!("partner {partner}: storing the PSA secret: {e}"))?;
    ctx.secrets
        .put_platform(partner, &platform)
        .await
        .map_err(|e| anyhow!("partner {partner}: storing the platform secret: {e}"))?;
    Ok(tenant)
}

/// What `partner apply` did.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub partner: String,
    pub settings_changed: bool,
    pub companies_changed: Vec<String>,
}

fn find_company<'a>(all: &'a [PsaCompany], key: &str) -> Option<&'a PsaCompany> {
    all.iter()
        .find(|c| c.identifier.eq_ignore_ascii_case(key))
        .or_else(|| all.iter().find(|c| c.id == key))
}

/// Clients for a partner file's partner, from the stored secrets.
async fn clients_for_spec(ctx: &Ctx, spec: &PartnerSpec) -> Result<(PartnerClients, String)> {
    let psa = ctx.secrets.psa(&spec.id).await.map_err(|e| {
        anyhow!(
            "partner {}: {e} (set the credentials first: `psa-bridge credentials set --partner {} …`)",
            spec.id,
            spec.id
        )
    })?;
    if psa.kind() != spec.psa {
        bail!(
            "partner {}: the file says psa: {} but the stored credentials are for {}",
            spec.id,
            spec.psa,
            psa.kind()
        );
    }
    let platform = ctx
        .secrets
        .platform(&spec.id)
        .await
        .map_err(|e| anyhow!("partner {}: {e}", spec.id))?;
    let probe = probe_partner(&spec.id, &psa, &spec.platform.url);
    let mut clients = clients_from_with(
        &probe,
        &psa,
        &platform,
        adapters::http::client(ctx.http.timeout),
        &ctx.http,
        &ctx.autotask,
    )?;
    let tenant = clients
        .platform
        .check_login()
        .await
        .map_err(|e| anyhow!("partner {}: {e}", spec.id))?;
    let mut real = probe;
    real.partner_tenant_id = tenant.clone();
    clients = clients_from_with(
        &real,
        &psa,
        &platform,
        adapters::http::client(ctx.http.timeout),
        &ctx.http,
        &ctx.autotask,
    )?;
    Ok((clients, tenant))
}

/// `partner apply -f partner.yaml`: settings, product mapping and company mapping. Idempotent;
/// validates everything (R-SET-1, R-MAP-1/2/5, R-CO-1/3/5) before writing anything.
pub async fn apply_partner(ctx: &Ctx, yaml: &str) -> Result<Applied> {
    let spec = config::parse(yaml).map_err(|e| anyhow!(e))?;
    let (clients, tenant) = clients_for_spec(ctx, &spec).await?;
    let existing = ctx.store.partner(&spec.id).await?;
    let catalog = clients
        .psa
        .products()
        .await
        .map_err(|e| anyhow!("partner {}: reading the product catalogue: {e}", spec.id))?;
    let locations = clients
        .platform
        .storage_locations()
        .await
        .map_err(|e| anyhow!("partner {}: reading storage locations: {e}", spec.id))?;
    // Allocation codes are read only for a partner file that names one (two-way sync).
    let allocation_codes = if spec.two_way.is_some() {
        clients
            .psa
            .allocation_codes()
            .await
            .map_err(|e| anyhow!("partner {}: reading the allocation codes: {e}", spec.id))?
    } else {
        Vec::new()
    };
    let catalog = config::Catalog {
        products: catalog,
        allocation_codes,
        locations,
    };
    let version = existing.as_ref().map_or(0, |p| p.version);
    let resolve = |catalog: &config::Catalog| {
        config::resolve(&spec, &tenant, catalog, version)
            .map_err(|errs| anyhow!("partner {}: {}", spec.id, errs.join("\n  ")))
    };
    // Services to create (R-TWO-1) are created only once the whole file is known to be good.
    let to_create = config::products_to_create(&spec, &catalog);
    let mut catalog = catalog;
    if !to_create.is_empty() {
        let planned = resolve(&config::with_planned_products(&catalog, &to_create))?;
        for name in &to_create {
            let created = clients
                .psa
                .create_product(name, &planned.two_way)
                .await
                .map_err(|e| anyhow!("partner {}: creating service {name:?}: {e}", spec.id))?;
            catalog.products.push(created);
        }
    }
    let partner = resolve(&catalog)?;

    // Company mappings: decide every one before writing any.
    let mut planned: Vec<CompanyRecord> = Vec::new();
    let mut problems = Vec::new();
    if !spec.companies.is_empty() {
        let all = clients.psa.companies(&CompanyQuery::default()).await?;
        for c in &spec.companies {
            let Some(company) = find_company(&all, &c.company) else {
                problems.push(format!("company {:?} does not exist in the PSA", c.company));
                continue;
            };
            let request = c.request();
            let current = ctx.store.company(&spec.id, &company.id).await?;
            let (tenant, holder) = match &request {
                companies::MappingRequest::Existing(t) => {
                    let (found, _) = clients.platform.customers(std::slice::from_ref(t)).await?;
                    let planned_holder = planned
                        .iter()
                        .find(|r| r.tenant_id() == Some(t.as_str()))
                        .map(|r| r.company_id.clone());
                    let holder = match planned_holder {
                        Some(h) => Some(h),
                        None => ctx.store.tenant_holder(&spec.id, t).await?,
                    };
                    (found.into_iter().next().map(|t| t.tenant), holder)
                }
                _ => (None, None),
            };
            match companies::apply_request(
                current.as_ref(),
                &company.id,
                &company.name,
                &request,
                tenant.as_ref(),
                holder.as_deref(),
            ) {
                Ok(rec) if current.as_ref() != Some(&rec) => planned.push(rec),
                Ok(_) => {}
                Err(e) => problems.push(format!("company {}: {e}", c.company)),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "partner {}: nothing was applied:\n  {}",
            spec.id,
            problems.join("\n  ")
        );
    }
    let settings_changed = existing
        .as_ref()
        .map(|e| Partner {
            version: partner.version,
            ..e.clone()
        })
        .as_ref()
        != Some(&partner);
    if settings_changed {
        ctx.store.put_partner(&partner).await.with_context(|| {
            format!(
                "partner {}: saving the settings (changed concurrently?)",
                spec.id
            )
        })?;
    }
    let mut changed = Vec::new();
    for rec in planned {
        ctx.store.put_company(&spec.id, &rec).await?;
        changed.push(rec.company_id);
    }
    Ok(Applied {
        partner: spec.id,
        settings_changed,
        companies_changed: changed,
    })
}

/// Loads a configured partner or names it as unknown.
pub async fn partner(ctx: &Ctx, id: &str) -> Result<Partner> {
    ctx.store
        .partner(id)
        .await?
        .ok_or_else(|| anyhow!("unknown partner {id:?}: apply its partner file first (`psa-bridge partner apply -f …`)"))
}

/// `companies list` (R-CO-2, R-CO-4).
pub async fn list_companies(
    ctx: &Ctx,
    id: &str,
    filter: &CompanyFilter,
) -> Result<Vec<CompanyRow>> {
    let p = partner(ctx, id).await?;
    let clients = ctx.connector.connect(&p).await?;
    let all = clients.psa.companies(&CompanyQuery::default()).await?;
    let records = ctx.store.companies(id).await?;
    Ok(companies::list_companies(&all, &records, filter))
}

/// What `status` shows (R-STAT-1).
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub partner: String,
    pub psa: String,
    pub enabled: bool,
    pub switches: domain::model::Switches,
    pub mapping_usable: Result<(), String>,
    pub status: PartnerStatus,
    pub companies_mapped: usize,
    pub companies_to_create: usize,
    pub failing: Vec<(String, String)>,
}

pub async fn status(ctx: &Ctx, id: &str) -> Result<StatusView> {
    let p = partner(ctx, id).await?;
    let records = ctx.store.companies(id).await?;
    let status = ctx.store.status(id).await?;
    Ok(StatusView {
        partner: p.id.clone(),
        psa: p.psa.to_string(),
        enabled: p.enabled,
        switches: p.switches.clone(),
        mapping_usable: domain::rules::mapping::usable(&p.mapping),
        status,
        companies_mapped: records
            .iter()
            .filter(|r| matches!(r.mapping, Mapping::Tenant(_)))
            .count(),
        companies_to_create: records
            .iter()
            .filter(|r| r.mapping == Mapping::NewTenant)
            .count(),
        failing: records
            .iter()
            .filter_map(|r| r.last_error.clone().map(|e| (r.company_id.clone(), e)))
            .collect(),
    })
}

/// The options of `sync`.
#[derive(Debug, Clone, Default)]
pub struct SyncArgs {
    pub company: Option<String>,
    pub full: bool,
    pub dry_run: bool,
    pub force: bool,
}

/// `sync`: runs the sync-tenant handler's work mode for a partner, exactly as Lambda would.
pub async fn run_sync(
    deps: &sync_tenant::Deps,
    partner: &str,
    a: &SyncArgs,
) -> Result<sync::SyncReport> {
    let detail = sync_tenant::SyncDetail {
        partner: partner.to_owned(),
        pass: Some(if a.full {
            sync_tenant::Pass::Full
        } else {
            sync_tenant::Pass::Incremental
        }),
        company_id: a.company.clone(),
        dry_run: a.dry_run,
        force: a.force,
        entity: None,
        id: None,
    };
    Ok(sync_tenant::work(deps, &detail).await?)
}
