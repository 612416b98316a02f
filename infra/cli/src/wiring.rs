//! Wiring: builds the adapters the services need from the command line's AWS and vendor
//! settings. Nothing here runs an operation; `app` calls `domain::services` with these.

use adapters::autotask::AutotaskConfig;
use adapters::aws::{local_sdk_config, sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::HttpSettings;
use domain::ports::{Clock, Connector, Events, HookSecrets, Secrets, Store};
use std::sync::Arc;

/// The ports of a deployment, as the CLI reaches them.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    /// The partners' webhook secrets (R-HOOK-2).
    pub hooks: Arc<dyn HookSecrets>,
    pub connector: Arc<dyn Connector>,
    pub events: Arc<dyn Events>,
}

/// Where the deployment is and how to reach the vendors.
#[derive(Debug, Clone)]
pub struct Target {
    pub resources: Resources,
    /// AWS endpoint override (a local moto server).
    pub endpoint_url: Option<String>,
    /// Autotask zone-discovery URL (a non-standard zone, or the sandbox).
    pub autotask_url: Option<String>,
}

/// The AWS adapters of a target.
pub async fn aws(t: &Target) -> AwsAdapters {
    let sdk = match &t.endpoint_url {
        Some(url) => local_sdk_config(url).await,
        None => sdk_config(None).await,
    };
    AwsAdapters::new(&sdk, &t.resources)
}

/// Autotask settings: the environment's, with the target's zone URL when given.
pub fn autotask(t: &Target, clock: Arc<dyn Clock>) -> AutotaskConfig {
    let mut a = AutotaskConfig::from_env();
    if let Some(url) = &t.autotask_url {
        a.zone_url = url.clone();
    }
    a.clock = clock;
    a
}

/// The ports over a target's AWS adapters.
pub fn ctx(aws: &AwsAdapters, http: &HttpSettings, autotask: AutotaskConfig) -> Ctx {
    let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
    Ctx {
        store: Arc::new(aws.store.clone()),
        connector: Arc::new(
            VendorConnector::new(secrets.clone(), http.clone()).with_autotask(autotask),
        ),
        secrets,
        hooks: Arc::new(aws.secrets.clone()),
        events: Arc::new(aws.events.clone()),
    }
}
