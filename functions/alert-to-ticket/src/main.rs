//! alert-to-ticket — placeholder until its issue lands: the package builds and deploys, and
//! answers every event with an explicit "not implemented yet" error so nothing
//! is silently dropped (the on-failure destination keeps the event).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let _ = event;
        Err::<Value, Error>("alert-to-ticket is not implemented yet".into())
    }))
    .await
}
