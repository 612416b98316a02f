//! Fake Acronis Cyber Protect Cloud Account Management API v2 (`/api/2`).
//!
//! Layout: `wire.rs` timestamps, numbers and error bodies · `state.rs` the tenant tree,
//! items, catalogues, clients, infra, usages, users · `render.rs` the JSON of tenants, items,
//! usages and infra · `handle.rs` the test-control methods of [`PlatformFake`] · `routes.rs`
//! the router and shared request helpers (query, bodies, visibility, paging) · `auth.rs`
//! tokens, clients and the request wrapper · `tenants.rs` tenant reads ·
//! `tenant_writes.rs` tenant create/update/delete · `settings.rs` pricing and MFA ·
//! `items.rs` offering items and usages · `usage.rs` usage values, per-day history and
//! `PUT /tenants/usages` · `reports.rs` usage reports (routes, readiness, stored reports) ·
//! `report_post.rs` the `POST /reports` body rules and answer · `report_csv.rs` the csv_v2_0
//! content (gzip) · `directory.rs` locations, infra and users.

/// `tri!(expr)`: the value of an `Ok`, or return the `Err` response from the handler closure.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

mod auth;
mod directory;
mod handle;
mod items;
mod render;
mod report_csv;
mod report_post;
mod reports;
mod routes;
mod settings;
mod state;
mod tenant_writes;
mod tenants;
#[cfg(test)]
mod tests;
mod usage;
mod wire;

use std::{io, net::SocketAddr, sync::Arc};

pub use wire::am_time;

use crate::common::{self, Common, Server};
use state::PfState;

/// Cyber Protection application id used for every offering item.
pub const APPLICATION_ID: &str = "6e6d758d-8e74-3ae3-ac84-50eb0dff12eb";
/// Count offering items every partner's catalogue holds (edition `standard`, unit quantity).
pub const COUNT_ITEMS: &[&str] = &[
    "workstations",
    "servers",
    "vms",
    "mobiles",
    "web_hosting_servers",
    "mailboxes",
    "gsuite_seats",
];
/// Token lifetime in seconds.
pub const TOKEN_TTL_SECS: i64 = 7200;
const DEFAULT_LIMIT: usize = 5000;

/// What [`PlatformFake::add_partner`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerAccount {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub default_infra_id: String,
}

/// Handle to a running fake platform (Account Management API) server (cheap to clone).
#[derive(Clone)]
pub struct PlatformFake {
    inner: Arc<Server<PfState>>,
}

impl PlatformFake {
    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<PlatformFake> {
        let (listener, local) = common::bind(addr).await?;
        let common = Common::new(wire::fault_response);
        let now = common.clock.now();
        let inner = Server::new(local, common, PfState::new(now));
        let app = common::assemble(routes::router(inner.clone()), &inner.common);
        common::spawn(listener, app);
        Ok(PlatformFake { inner })
    }
}

common::fake_handle!(PlatformFake);
