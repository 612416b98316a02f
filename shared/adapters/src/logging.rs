//! The functions' logging: one `tracing` subscriber for every function, at the level of the
//! template's `LogLevel` (Lambda passes it as `AWS_LAMBDA_LOG_LEVEL`, and it is `RUST_LOG` too),
//! JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, that never prints payloads, whatever the level says.
//!
//! At TRACE `lambda_runtime` logs every raw event ("raw JSON event received from Lambda"), and
//! events carry webhook bodies and PSA data; so the Lambda runtime crates are capped at INFO.
//! At TRACE the AWS SDK's transport (`aws_smithy_runtime`, `aws_sigv4`) logs whole requests,
//! headers (the session token) and bodies (items, events, a `PutSecretValue`'s secret), so those
//! crates are capped at DEBUG. Everything else follows the level.

use std::env;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Targets (and the modules under them) that never log beyond the given level.
pub const CAPPED: [(&str, LevelFilter); 5] = [
    ("lambda_runtime", LevelFilter::INFO),
    ("lambda_runtime_api_client", LevelFilter::INFO),
    ("lambda_http", LevelFilter::INFO),
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_sigv4", LevelFilter::DEBUG),
];

/// Installs the subscriber (once, first thing in `main`): the level from `AWS_LAMBDA_LOG_LEVEL`,
/// else `RUST_LOG`, else INFO; JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`. Replaces
/// `lambda_runtime::tracing::init_default_subscriber`, which would print raw events at TRACE.
pub fn init() {
    let setting = env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Like the runtime's default subscriber: no timestamps (CloudWatch stamps each line), no
    // targets; and no ANSI colours in CloudWatch.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter(&setting)))
        .init();
}

/// The filter for a level setting — a level (`TRACE` … `ERROR`, Lambda's `FATAL` too) or
/// `RUST_LOG` directives, INFO when empty — with the [`CAPPED`] targets capped: a directive such
/// as `lambda_runtime=trace` cannot lift a cap, it can only lower the level further.
pub fn filter<S>(setting: &str) -> impl Filter<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let setting = setting.trim();
    // tracing has no FATAL (a Lambda log level): it would be read as a target name.
    let setting = if setting.eq_ignore_ascii_case("fatal") {
        "error"
    } else {
        setting
    };
    let level = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(setting);
    let caps = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED);
    level.and(caps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::{debug, error, info, trace, warn, Event, Level};
    use tracing_subscriber::layer::Context;

    /// Records (target, level, message) of every event that reaches it.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(String, Level, String)>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            struct Message(String);
            impl Visit for Message {
                fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            let meta = event.metadata();
            self.0
                .lock()
                .unwrap()
                .push((meta.target().to_owned(), *meta.level(), m.0));
        }
    }

    /// What reaches the log, under `setting`, of events like the runtime's, the SDK's and ours.
    fn logged(setting: &str) -> Vec<(String, Level)> {
        // One test subscriber at a time: tracing caches each callsite's interest across all
        // live subscribers.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let capture = Capture::default();
        let subscriber =
            tracing_subscriber::registry().with(capture.clone().with_filter(filter(setting)));
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime 1.x logs at TRACE for every invocation.
            trace!(
                target: "lambda_runtime::layers::api_response",
                body = r#"{"body":"webhook payload","partner":"acme"}"#,
                "raw JSON event received from Lambda"
            );
            debug!(target: "lambda_runtime::runtime", "Concurrent polling disabled");
            info!(target: "lambda_runtime", "runtime info");
            trace!(target: "lambda_runtime_api_client::body", "client trace");
            trace!(target: "lambda_http::request", "http trace");
            trace!(target: "aws_smithy_runtime::client::orchestrator", "transmitting request");
            debug!(target: "aws_smithy_runtime::client::orchestrator", "retry strategy");
            trace!(target: "aws_sigv4::http_request::sign", "signing request");
            trace!(target: "sync_tenant", "our trace");
            debug!(target: "adapters::dynamo", "our debug");
            info!(target: "sync_tenant", "our info");
            warn!(target: "sync_tenant", "our warn");
            error!(target: "lambda_runtime", "runtime error");
        });
        let events = capture.0.lock().unwrap().clone();
        assert!(
            !events.iter().any(|(_, _, m)| m.contains("raw JSON event")),
            "{setting:?} logs the raw event: {events:?}"
        );
        events.into_iter().map(|(t, l, _)| (t, l)).collect()
    }

    fn e(target: &str, level: Level) -> (String, Level) {
        (target.to_owned(), level)
    }

    #[test]
    fn trace_never_logs_raw_events_nor_sdk_requests() {
        let at_trace = vec![
            e("lambda_runtime", Level::INFO),
            e("aws_smithy_runtime::client::orchestrator", Level::DEBUG),
            e("sync_tenant", Level::TRACE),
            e("adapters::dynamo", Level::DEBUG),
            e("sync_tenant", Level::INFO),
            e("sync_tenant", Level::WARN),
            e("lambda_runtime", Level::ERROR),
        ];
        // The template's LogLevel as Lambda passes it, and as RUST_LOG.
        assert_eq!(logged("TRACE"), at_trace);
        assert_eq!(logged("trace"), at_trace);
        // Directives cannot lift the caps, not even for a module under a capped crate.
        assert_eq!(
            logged(
                "trace,lambda_runtime=trace,lambda_runtime::layers=trace,aws_smithy_runtime=trace"
            ),
            at_trace
        );
    }

    #[test]
    fn the_level_still_applies_below_the_caps() {
        assert_eq!(
            logged("DEBUG"),
            vec![
                e("lambda_runtime", Level::INFO),
                e("aws_smithy_runtime::client::orchestrator", Level::DEBUG),
                e("adapters::dynamo", Level::DEBUG),
                e("sync_tenant", Level::INFO),
                e("sync_tenant", Level::WARN),
                e("lambda_runtime", Level::ERROR),
            ]
        );
        let at_info = vec![
            e("lambda_runtime", Level::INFO),
            e("sync_tenant", Level::INFO),
            e("sync_tenant", Level::WARN),
            e("lambda_runtime", Level::ERROR),
        ];
        assert_eq!(logged("INFO"), at_info);
        assert_eq!(logged(""), at_info, "INFO when unset");
        assert_eq!(
            logged("WARN"),
            vec![
                e("sync_tenant", Level::WARN),
                e("lambda_runtime", Level::ERROR)
            ]
        );
        assert_eq!(logged("FATAL"), vec![e("lambda_runtime", Level::ERROR)]);
    }
}
