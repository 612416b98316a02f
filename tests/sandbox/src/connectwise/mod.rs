//! Fake ConnectWise Manage (REST 3.0).
//!
//! Layout: `records.rs` wire records and `add_*` inputs · `state.rs` one instance per login
//! company, its entity tables and the list resources · `handle.rs` the test-control methods of
//! [`ConnectWiseFake`] · `routes.rs` the router · `auth.rs` Basic auth and the request wrapper
//! · `query.rs` `conditions`, `orderBy`, paging, `count` · `writes.rs` callbacks and additions · `entity_writes.rs` POST/PATCH of companies,
//! contacts, agreements and tickets
//! · `errors.rs` the vendor's error bodies.

mod auth;
mod entity_writes;
mod errors;
mod handle;
mod query;
mod records;
mod routes;
mod state;
mod writes;

use std::{io, net::SocketAddr, sync::Arc};

pub use records::{
    cw_format, CwAddition, CwAgreement, CwCatalogItem, CwCommunicationItem, CwCompany,
    CwCompanyRef, CwContact, CwInfo, CwProductRef, CwRef, CwTicket, NewAddition, NewAgreement,
    NewCompany,
};

use crate::common::{self, Common, Server};
use state::CwState;

/// Codebase every fake instance reports.
pub const CODEBASE: &str = "v2025_1/";

/// Handle to a running fake ConnectWise Manage server (cheap to clone).
#[derive(Clone)]
pub struct ConnectWiseFake {
    inner: Arc<Server<CwState>>,
}

impl ConnectWiseFake {
    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<ConnectWiseFake> {
        let (listener, local) = common::bind(addr).await?;
        let inner = Server::new(
            local,
            Common::new(errors::fault_response),
            CwState::default(),
        );
        let app = common::assemble(routes::router(inner.clone()), &inner.common)
            .merge(routes::control_router(inner.clone()));
        common::spawn(listener, app);
        Ok(ConnectWiseFake { inner })
    }
}

common::fake_handle!(ConnectWiseFake);
