//! Builds a partner's PSA and platform clients from its settings and its secrets.

use crate::connectwise::ConnectWise;
use crate::http::HttpSettings;
use crate::platform::PlatformApi;
use async_trait::async_trait;
use domain::model::Partner;
use domain::ports::{Connector, PartnerClients, Secrets};
use domain::rules::settings::PsaCredentials;
use domain::{PortError, PortResult, System};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone)]
pub struct VendorConnector {
    secrets: Arc<dyn Secrets>,
    http: reqwest::Client,
    settings: HttpSettings,
}

impl VendorConnector {
    pub fn new(secrets: Arc<dyn Secrets>, settings: HttpSettings) -> Self {
        VendorConnector {
            secrets,
            http: crate::http::client(settings.timeout),
            settings,
        }
    }
}

/// Builds clients from credentials already in hand (used to verify them before storing).
pub fn clients_from(
    partner: &Partner,
    psa: &PsaCredentials,
    platform: &domain::rules::settings::PlatformCredentials,
    http: reqwest::Client,
    settings: &HttpSettings,
) -> PortResult<PartnerClients> {
    let psa_client = match psa {
        PsaCredentials::ConnectWise(cw) => ConnectWise::new(cw, http.clone(), settings)?,
        PsaCredentials::Autotask(_) => {
            return Err(PortError::Rejected {
                system: System::Psa,
                message: format!(
                    "partner {}: Autotask is not supported by this version yet",
                    partner.id
                ),
            })
        }
    };
    let platform_client = PlatformApi::new(
        &partner.platform_url,
        &partner.partner_tenant_id,
        platform,
        http,
        settings,
    )?;
    let (a, b) = (psa_client.counter(), platform_client.counter());
    Ok(PartnerClients {
        psa: Arc::new(psa_client),
        platform: Arc::new(platform_client),
        counters: Arc::new(move || (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed))),
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
        clients_from(partner, &psa, &platform, self.http.clone(), &self.settings)
    }
}
