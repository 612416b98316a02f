//! EventBridge: summary and work events on the project's bus (PutEvents, batches of 10).

use crate::dynamo::aws_message;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use domain::ports::{BusEvent, Events};
use domain::{PortError, PortResult, System};

/// The `system` field of this adapter's log lines.
const LOG_SYSTEM: &str = "eventbridge";

/// The `source` of every event psa-bridge puts on its bus.
pub const SOURCE: &str = "psa-bridge";

#[derive(Clone)]
pub struct EventBus {
    client: Client,
    bus: String,
}

impl EventBus {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBus {
            client,
            bus: bus.into(),
        }
    }
}

/// The partner of a batch of events (its first event's `detail.partner`), for the logs.
fn events_partner(events: &[BusEvent]) -> &str {
    events
        .iter()
        .find_map(|e| e.detail.get("partner").and_then(|p| p.as_str()))
        .unwrap_or("")
}

#[async_trait]
impl Events for EventBus {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %events_partner(events),
            system = LOG_SYSTEM,
            bus = %self.bus,
            events = events.len(),
        )
    )]
    async fn publish(&self, events: &[BusEvent]) -> PortResult<()> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PortError::Transient {
                    system: System::Events,
                    message: format!("putting events on {}: {}", self.bus, aws_message(&e)),
                })?;
            if out.failed_entry_count > 0 {
                let why: Vec<String> = out
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e.error_message)
                    .collect();
                return Err(PortError::Transient {
                    system: System::Events,
                    message: format!(
                        "{} of {} events were not accepted by {}: {}",
                        out.failed_entry_count,
                        chunk.len(),
                        self.bus,
                        why.join("; ")
                    ),
                });
            }
        }
        Ok(())
    }
}
