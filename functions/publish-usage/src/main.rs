//! publish-usage Lambda: wires the adapters and hands the handler to the runtime.

use adapters::aws::{sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::HttpSettings;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::ports::SystemClock;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use publish_usage::{handle, Deps};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let resources = Resources::from_env()?;
    let aws = AwsAdapters::new(&sdk_config(None).await, &resources);
    let settings = HttpSettings::default();
    let deps = Deps {
        store: Arc::new(aws.store.clone()),
        events: Arc::new(aws.events.clone()),
        connector: Arc::new(VendorConnector::new(
            Arc::new(aws.secrets.clone()),
            settings.clone(),
        )),
        clock: Arc::new(SystemClock),
        concurrency: settings.concurrency,
    };
    let deadline = settings.deadline.clone();
    lambda_runtime::run(service_fn(|ev: LambdaEvent<EventBridgeEvent<Value>>| {
        let deps = deps.clone();
        // R-REL-1: every client's retries stop before this invocation's time is up.
        deadline.set_epoch_ms(ev.context.deadline);
        let run_id = ev.context.request_id.clone();
        async move { handle(&deps, ev.payload, &run_id).await }
    }))
    .await
}
