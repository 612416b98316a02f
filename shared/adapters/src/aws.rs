//! AWS SDK configuration: the real chain in Lambda; an endpoint override (moto) locally.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the SDK config. `endpoint` (or `AWS_ENDPOINT_URL`, which the SDK reads itself) points
/// every client at a local moto server.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    let cfg = loader.load().await;
    if cfg.region().is_none() {
        // Lambda always sets AWS_REGION; locally default to us-east-1.
        return aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint.unwrap_or_default())
            .load()
            .await;
    }
    cfg
}

/// Names of the deployment's AWS resources, from the functions' environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub bus: String,
    pub secret_prefix: String,
}

impl Resources {
    /// Reads `PSA_BRIDGE_TABLE`, `PSA_BRIDGE_BUS` and `PSA_BRIDGE_SECRET_PREFIX` (default
    /// `psa-bridge/`), naming the variable that is missing.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("environment variable {k} is not set"))
        };
        Ok(Resources {
            table: var("PSA_BRIDGE_TABLE")?,
            bus: var("PSA_BRIDGE_BUS")?,
            secret_prefix: std::env::var("PSA_BRIDGE_SECRET_PREFIX")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "psa-bridge/".to_owned()),
        })
    }
}

/// The AWS-backed adapters every function uses, built once per process.
#[derive(Clone)]
pub struct AwsAdapters {
    pub store: crate::dynamo::DynamoStore,
    pub events: crate::eventbus::EventBus,
    pub secrets: crate::secrets::SecretsManager,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
}

impl AwsAdapters {
    pub fn new(sdk: &SdkConfig, r: &Resources) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let eventbridge = aws_sdk_eventbridge::Client::new(sdk);
        let secretsmanager = aws_sdk_secretsmanager::Client::new(sdk);
        AwsAdapters {
            store: crate::dynamo::DynamoStore::new(dynamodb.clone(), &r.table),
            events: crate::eventbus::EventBus::new(eventbridge.clone(), &r.bus),
            secrets: crate::secrets::SecretsManager::new(secretsmanager.clone(), &r.secret_prefix),
            dynamodb,
            eventbridge,
            secretsmanager,
        }
    }
}

/// An SDK config for a local endpoint (moto): fixed test credentials and region, so the SDK
/// never looks for real credentials or the instance-metadata address.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "psa-bridge-local",
        ))
        .load()
        .await
}
