//! Partners: credentials (R-SET-3/4) and the partner file (R-SET-1, R-MAP-1/2/5, R-CO-1/3/5).

use super::companies::plan_mapping;
use super::OpError;
use crate::config::{self, PartnerSpec};
use crate::model::{CompanyRecord, Partner};
use crate::ports::{CompanyQuery, CompanyStore, Connector, PartnerClients, PartnerStore, Secrets};
use crate::rules::settings::{check_psa_credentials, PlatformCredentials, PsaCredentials};
use serde::Serialize;

/// A configured partner, or [`OpError::UnknownPartner`].
pub async fn partner(store: &(impl PartnerStore + ?Sized), id: &str) -> Result<Partner, OpError> {
    store
        .partner(id)
        .await
        .map_err(OpError::port(id, "reading its settings"))?
        .ok_or_else(|| OpError::UnknownPartner(id.to_owned()))
}

/// A partner as far as credentials go: enough to reach both systems.
fn probe_partner(id: &str, psa: crate::model::PsaKind, platform_url: &str) -> Partner {
    Partner {
        id: id.to_owned(),
        name: id.to_owned(),
        psa,
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
        line_refresh_hours: 24,
        usage_period: Default::default(),
        version: 0,
    }
}

/// Logs in to both systems; returns the partner tenant the platform API client acts for.
async fn log_in(partner: &str, clients: &PartnerClients, psa: &str) -> Result<String, OpError> {
    clients
        .psa
        .check_login()
        .await
        .map_err(|source| OpError::LoginFailed {
            partner: partner.to_owned(),
            system: psa.to_owned(),
            source,
        })?;
    clients
        .platform
        .check_login()
        .await
        .map_err(|source| OpError::LoginFailed {
            partner: partner.to_owned(),
            system: "platform".into(),
            source,
        })
}

/// `credentials set`: logs in to the PSA and the platform with the given credentials and stores
/// them only when both work (R-SET-3, R-SET-4). Returns the partner tenant the API client acts for.
pub async fn set_credentials(
    connector: &dyn Connector,
    secrets: &dyn Secrets,
    partner: &str,
    platform_url: &str,
    psa: PsaCredentials,
    platform: PlatformCredentials,
) -> Result<String, OpError> {
    let mut problems: Vec<String> = crate::rules::settings::check_partner_id(partner)
        .err()
        .into_iter()
        .collect();
    if let Err(p) = check_psa_credentials(&psa) {
        problems.extend(p);
    }
    if let Err(why) = crate::rules::settings::check_vendor_url("platform url", platform_url) {
        problems.push(why);
    }
    if platform.client_id.trim().is_empty() {
        problems.push("platform client id is empty".into());
    }
    if !problems.is_empty() {
        return Err(OpError::Invalid {
            partner: partner.to_owned(),
            problems,
        });
    }
    let probe = probe_partner(partner, psa.kind(), platform_url);
    let clients = connector
        .connect_with(&probe, &psa, &platform)
        .await
        .map_err(OpError::port(partner, "reaching its systems"))?;
    let tenant = log_in(partner, &clients, &psa.kind().to_string()).await?;
    secrets
        .put_psa(partner, &psa)
        .await
        .map_err(OpError::port(partner, "storing the PSA secret"))?;
    secrets
        .put_platform(partner, &platform)
        .await
        .map_err(OpError::port(partner, "storing the platform secret"))?;
    Ok(tenant)
}

/// What `credentials test` found: both log-ins worked with the stored credentials.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialsOk {
    pub partner: String,
    pub psa: String,
    /// The partner tenant the platform API client acts for.
    pub partner_tenant: String,
}

/// `credentials test`: logs in to both systems with the stored credentials (R-SET-4).
pub async fn test_credentials(
    store: &(impl PartnerStore + ?Sized),
    connector: &dyn Connector,
    id: &str,
) -> Result<CredentialsOk, OpError> {
    let p = partner(store, id).await?;
    let clients = connector
        .connect(&p)
        .await
        .map_err(OpError::port(id, "reading its credentials"))?;
    let partner_tenant = log_in(id, &clients, &p.psa.to_string()).await?;
    Ok(CredentialsOk {
        partner: p.id,
        psa: p.psa.to_string(),
        partner_tenant,
    })
}

/// What `partner apply` did.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub partner: String,
    pub settings_changed: bool,
    pub companies_changed: Vec<String>,
}

/// Clients for a partner file's partner, from the stored secrets, acting for its tenant.
async fn clients_for_spec(
    connector: &dyn Connector,
    spec: &PartnerSpec,
) -> Result<(PartnerClients, String), OpError> {
    let mut probe = probe_partner(&spec.id, spec.psa, &spec.platform.url);
    let clients = connector.connect(&probe).await.map_err(|source| match source {
        crate::PortError::Credentials { .. } | crate::PortError::NotFound { .. } => OpError::Port {
            partner: spec.id.clone(),
            what: format!(
                "reading its credentials (set them first: `psa-bridge credentials set --partner {} …`)",
                spec.id
            ),
            source,
        },
        source => OpError::port(&spec.id, "reaching its systems")(source),
    })?;
    let tenant = clients
        .platform
        .check_login()
        .await
        .map_err(OpError::port(&spec.id, "platform log-in"))?;
    probe.partner_tenant_id = tenant.clone();
    let clients = connector
        .connect(&probe)
        .await
        .map_err(OpError::port(&spec.id, "reaching its systems"))?;
    Ok((clients, tenant))
}

/// `partner apply -f partner.yaml`: settings, product mapping and company mapping. Idempotent;
/// validates everything (R-SET-1, R-MAP-1/2/5, R-CO-1/3/5) before writing anything.
pub async fn apply(
    store: &(impl PartnerStore + CompanyStore + ?Sized),
    connector: &dyn Connector,
    yaml: &str,
) -> Result<Applied, OpError> {
    let spec = config::parse(yaml).map_err(|e| OpError::invalid("(file)", e))?;
    let id = spec.id.clone();
    let (clients, tenant) = clients_for_spec(connector, &spec).await?;
    let existing = store
        .partner(&id)
        .await
        .map_err(OpError::port(&id, "reading its settings"))?;
    let products = clients
        .psa
        .products()
        .await
        .map_err(OpError::port(&id, "reading the product catalogue"))?;
    let locations = clients
        .platform
        .storage_locations()
        .await
        .map_err(OpError::port(&id, "reading storage locations"))?;
    // Allocation codes are read only for a partner file that names one (two-way sync).
    let allocation_codes = match (&spec.two_way, &clients.contracts) {
        (Some(_), Some(w)) => w
            .allocation_codes()
            .await
            .map_err(OpError::port(&id, "reading the allocation codes"))?,
        _ => Vec::new(),
    };
    let offering_items = clients
        .platform
        .offering_items()
        .await
        .map_err(OpError::port(&id, "reading the platform's offering items"))?;
    let catalog = config::Catalog {
        products,
        allocation_codes,
        locations,
        offering_items,
    };
    let version = existing.as_ref().map_or(0, |p| p.version);
    let resolve = |catalog: &config::Catalog| {
        config::resolve(&spec, &tenant, catalog, version).map_err(|problems| OpError::Invalid {
            partner: id.clone(),
            problems,
        })
    };
    // Services to create (R-TWO-1) are created only once the whole file, company mappings
    // included, is known to be good.
    let to_create = config::products_to_create(&spec, &catalog);
    let checked = resolve(&config::with_planned_products(&catalog, &to_create))?;
    let planned = plan_company_mappings(store, &clients, &spec, &tenant).await?;
    let mut catalog = catalog;
    if !to_create.is_empty() {
        let writer = clients
            .contracts(spec.psa)
            .map_err(OpError::port(&id, "creating services"))?;
        for name in &to_create {
            let created = writer
                .create_product(name, &checked.two_way)
                .await
                .map_err(OpError::port(&id, format!("creating service {name:?}")))?;
            catalog.products.push(created);
        }
    }
    let partner = resolve(&catalog)?;
    let settings_changed = existing
        .as_ref()
        .map(|e| Partner {
            version: partner.version,
            ..e.clone()
        })
        .as_ref()
        != Some(&partner);
    if settings_changed {
        store.put_partner(&partner).await.map_err(OpError::port(
            &id,
            "saving the settings (changed concurrently?)",
        ))?;
    }
    let mut changed = Vec::new();
    for rec in planned {
        store.put_company(&id, &rec).await.map_err(OpError::port(
            &id,
            format!("saving company {}", rec.company_id),
        ))?;
        changed.push(rec.company_id);
    }
    Ok(Applied {
        partner: id,
        settings_changed,
        companies_changed: changed,
    })
}

/// The records the file's `companies:` would write, every one decided before any is written.
async fn plan_company_mappings(
    store: &(impl CompanyStore + ?Sized),
    clients: &PartnerClients,
    spec: &PartnerSpec,
    partner_tenant: &str,
) -> Result<Vec<CompanyRecord>, OpError> {
    let mut planned: Vec<CompanyRecord> = Vec::new();
    let mut problems = Vec::new();
    if spec.companies.is_empty() {
        return Ok(planned);
    }
    let all = clients
        .psa
        .companies(&CompanyQuery::default())
        .await
        .map_err(OpError::port(&spec.id, "reading the PSA's companies"))?;
    for c in &spec.companies {
        let Some(company) = super::companies::find(&all, &c.company) else {
            problems.push(format!("company {:?} does not exist in the PSA", c.company));
            continue;
        };
        match plan_mapping(
            store,
            clients,
            &spec.id,
            partner_tenant,
            company,
            &c.request(),
            &planned,
        )
        .await
        {
            Ok(Some(rec)) => planned.push(rec),
            Ok(None) => {}
            Err(OpError::Invalid { problems: p, .. }) => {
                problems.extend(p.into_iter().map(|p| format!("company {}: {p}", c.company)))
            }
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(OpError::Invalid {
            partner: spec.id.clone(),
            problems,
        });
    }
    Ok(planned)
}
