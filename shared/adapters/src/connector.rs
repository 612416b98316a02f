//! Builds a partner's PSA and platform clients from its settings and its secrets.

use crate::autotask::{Autotask, AutotaskConfig};
use crate::connectwise::ConnectWise;
use crate::http::HttpSettings;
use crate::platform::PlatformApi;
use async_trait::async_trait;
use domain::model::Partner;
use domain::ports::{
    Connector, ContractWriter, LineQuantities, PartnerClients, PsaDirectory, Secrets,
};
use domain::rules::settings::PsaCredentials;
use domain::{PortError, PortResult, System};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone)]
pub struct VendorConnector {
    secrets: Arc<dyn Secrets>,
    http: reqwest::Client,
    settings: HttpSettings,
    autotask: AutotaskConfig,
}

impl VendorConnector {
    /// Autotask settings come from the environment ([`AutotaskConfig::from_env`]).
    pub fn new(secrets: Arc<dyn Secrets>, settings: HttpSettings) -> Self {
        VendorConnector {
            secrets,
            http: crate::http::client(settings.timeout),
            settings,
            autotask: AutotaskConfig::from_env(),
        }
    }

    /// Replaces the Autotask settings (zone-discovery URL, PAYG field, limits), e.g. to point
    /// at a fake without touching the process environment.
    pub fn with_autotask(mut self, config: AutotaskConfig) -> Self {
        self.autotask = config;
        self
    }

    /// The clock the clients take "today" from (the handler's injected clock).
    pub fn with_clock(mut self, clock: Arc<dyn domain::ports::Clock>) -> Self {
        self.autotask.clock = clock;
        self
    }
}

/// Builds clients from credentials already in hand (used to verify them before storing).
/// Autotask settings come from the environment ([`AutotaskConfig::from_env`]).
pub fn clients_from(
    partner: &Partner,
    psa: &PsaCredentials,
    platform: &domain::rules::settings::PlatformCredentials,
    http: reqwest::Client,
    settings: &HttpSettings,
) -> PortResult<PartnerClients> {
    clients_from_with(
        partner,
        psa,
        platform,
        http,
        settings,
        &AutotaskConfig::from_env(),
    )
}

/// [`clients_from`] with explicit Autotask settings.
pub fn clients_from_with(
    partner: &Partner,
    psa: &PsaCredentials,
    platform: &domain::rules::settings::PlatformCredentials,
    http: reqwest::Client,
    settings: &HttpSettings,
    autotask: &AutotaskConfig,
) -> PortResult<PartnerClients> {
    type Count = Arc<dyn Fn() -> u64 + Send + Sync>;
    type Psa = (
        Arc<dyn PsaDirectory>,
        Option<Arc<dyn ContractWriter>>,
        Arc<dyn LineQuantities>,
        Count,
    );
    let (psa_client, contracts, quantities, psa_requests): Psa = match psa {
        PsaCredentials::ConnectWise(cw) => {
            let c = ConnectWise::new(cw, http.clone(), settings)?.for_partner(&partner.id);
            let n = c.counter();
            let c = Arc::new(c);
            (
                c.clone(),
                None,
                c,
                Arc::new(move || n.load(Ordering::Relaxed)),
            )
        }
        PsaCredentials::Autotask(at) => {
            let mut a = Autotask::from_config(at, http.clone(), settings, autotask)?
                .for_partner(&partner.id);
            // R-PROV-3: the partner's own PAYG field name, when its file names one.
            if let Some(field) = &partner.autotask.payg_field {
                a = a.with_payg_field(field);
            }
            // "Today" from the injected clock, in the partner's time zone.
            let clock = autotask.clock.clone();
            let p = partner.clone();
            a = a.with_today(move || domain::services::sync::partner_today(&p, clock.now()));
            let n = a.clone();
            let a = Arc::new(a);
            (
                a.clone() as Arc<dyn PsaDirectory>,
                Some(a.clone() as Arc<dyn ContractWriter>),
                a as Arc<dyn LineQuantities>,
                Arc::new(move || n.requests()),
            )
        }
    };
    let platform_client = PlatformApi::new(
        &partner.platform_url,
        &partner.partner_tenant_id,
        platform,
        http,
        settings,
    )?
    .for_partner(&partner.id);
    let b = platform_client.counter();
    let platform_client = Arc::new(platform_client);
    Ok(PartnerClients {
        psa: psa_client,
        contracts,
        platform: platform_client.clone(),
        tenants: platform_client.clone(),
        usage: platform_client,
        quantities,
        counters: Arc::new(move || (psa_requests(), b.load(Ordering::Relaxed))),
    })
}

#[async_trait]
impl Connector for VendorConnector {
    async fn connect(&self, partner: &Partner) -> PortResult<PartnerClients> {
        let psa = self.secrets.psa(&partner.id).await?;
        if psa.kind() != partner.psa {
            return Err(PortError::Credentials {
                system: System::Secrets,
                message: format!(
                    "partner {} uses {} but its PSA secret holds {} credentials",
                    partner.id,
                    partner.psa,
                    psa.kind()
                ),
            });
        }
        let platform = self.secrets.platform(&partner.id).await?;
        self.connect_with(partner, &psa, &platform).await
    }

    async fn reconnect(&self, partner: &Partner) -> PortResult<PartnerClients> {
        self.secrets.forget(&partner.id).await;
        self.connect(partner).await
    }

    async fn connect_with(
        &self,
        partner: &Partner,
        psa: &PsaCredentials,
        platform: &domain::rules::settings::PlatformCredentials,
    ) -> PortResult<PartnerClients> {
        clients_from_with(
            partner,
            psa,
            platform,
            self.http.clone(),
            &self.settings,
            &self.autotask,
        )
    }
}
