//! [`MemoryEvents`] (records what is published) and [`MemoryConnector`] (hands out
//! [`PartnerClients`] over the memory PSA and platform, with request counters per connection).

use super::faults::{lock, Faults};
use super::platform::MemoryPlatform;
use super::psa::MemoryPsa;
use crate::error::PortResult;
use crate::model::{Partner, PsaKind};
use crate::ports::{BusEvent, Connector, ContractWriter, Events, PartnerClients};
use crate::rules::settings::{PlatformCredentials, PsaCredentials};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// The event bus in memory: every event published, in order.
#[derive(Default)]
pub struct MemoryEvents {
    published: Mutex<Vec<BusEvent>>,
    faults: Faults,
}

impl MemoryEvents {
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn published(&self) -> Vec<BusEvent> {
        lock(&self.published).clone()
    }

    /// The events published with this detail type.
    pub fn of_type(&self, detail_type: &str) -> Vec<BusEvent> {
        let all = lock(&self.published);
        all.iter()
            .filter(|e| e.detail_type == detail_type)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Events for MemoryEvents {
    async fn publish(&self, events: &[BusEvent]) -> PortResult<()> {
        self.faults.call("publish", "", || {
            lock(&self.published).extend_from_slice(events);
            Ok(())
        })
    }
}

/// Connects every partner to the one memory PSA and platform. An Autotask partner's clients
/// carry the PSA's contract writes; a ConnectWise partner's do not (synced one way).
pub struct MemoryConnector {
    psa: Arc<MemoryPsa>,
    platform: Arc<MemoryPlatform>,
    faults: Faults,
}

impl MemoryConnector {
    pub fn new(psa: Arc<MemoryPsa>, platform: Arc<MemoryPlatform>) -> Self {
        MemoryConnector {
            psa,
            platform,
            faults: Faults::default(),
        }
    }

    /// Faults of `connect` / `connect_with` (e.g. `PortError::Credentials`, R-SET-4).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Clients for `partner`, counting the requests made through any client from now on.
    pub fn clients(&self, partner: &Partner) -> PartnerClients {
        let (psa, platform) = (self.psa.clone(), self.platform.clone());
        let base = (psa.requests(), platform.requests());
        let contracts =
            (partner.psa == PsaKind::Autotask).then(|| self.psa.clone() as Arc<dyn ContractWriter>);
        PartnerClients {
            psa: self.psa.clone(),
            contracts,
            platform: self.platform.clone(),
            tenants: self.platform.clone(),
            usage: self.platform.clone(),
            quantities: self.psa.clone(),
            counters: Arc::new(move || (psa.requests() - base.0, platform.requests() - base.1)),
        }
    }
}

#[async_trait]
impl Connector for MemoryConnector {
    async fn connect(&self, partner: &Partner) -> PortResult<PartnerClients> {
        self.faults
            .call("connect", &partner.id, || Ok(self.clients(partner)))
    }

    async fn reconnect(&self, partner: &Partner) -> PortResult<PartnerClients> {
        self.faults
            .call("reconnect", &partner.id, || Ok(self.clients(partner)))
    }

    async fn connect_with(
        &self,
        partner: &Partner,
        _psa: &PsaCredentials,
        _platform: &PlatformCredentials,
    ) -> PortResult<PartnerClients> {
        self.faults
            .call("connect_with", &partner.id, || Ok(self.clients(partner)))
    }
}
