//! psa-bridge adapters: the ports of `domain` implemented against ConnectWise Manage, Autotask, the
//! platform's Account Management API, DynamoDB, Secrets Manager and EventBridge.

pub mod autotask;
pub mod aws;
pub mod connector;
pub mod connectwise;
pub mod dynamo;
pub mod eventbus;
pub mod http;
pub mod logging;
pub mod platform;
pub mod secrets;
pub mod signing_keys;
