//! webhook-receiver Lambda: wires the adapters and hands the handler to the runtime.

use adapters::aws::{sdk_config, AwsAdapters, Resources};
use adapters::signing_keys::HttpSigningKeys;
use domain::ports::SystemClock;
use lambda_http::{service_fn, Error, Request};
use std::sync::Arc;
use std::time::Duration;
use webhook_receiver::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let resources = Resources::from_env()?;
    let aws = AwsAdapters::new(&sdk_config(None).await, &resources);
    let deps = Deps {
        partners: Arc::new(aws.store.clone()),
        secrets: Arc::new(aws.secrets.clone()),
        deliveries: Arc::new(aws.store.clone()),
        keys: Arc::new(HttpSigningKeys::new(adapters::http::client(
            Duration::from_secs(5),
        ))),
        events: Arc::new(aws.events.clone()),
        clock: Arc::new(SystemClock),
    };
    lambda_http::run(service_fn(|req: Request| {
        let deps = deps.clone();
        async move { Ok::<_, Error>(handle(&deps, req).await) }
    }))
    .await
}
