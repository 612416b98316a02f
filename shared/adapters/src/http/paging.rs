//! Paging that cannot run away: every next page must be asked for with a cursor not seen before
//! in this listing (a vendor that answers the same `next` link, `after` cursor or page id again
//! would otherwise loop for ever), and a listing stops at a page cap.

use domain::{PortError, System};
use std::collections::HashSet;

/// Pages one listing may read: 10,000 pages of the vendors' page sizes is beyond any partner
/// (ConnectWise 1,000 records a page, Autotask 500, the platform 500 tenants).
pub const MAX_PAGES: usize = 10_000;

/// The pages of one listing.
pub struct Pages {
    system: System,
    what: String,
    cap: usize,
    read: usize,
    cursors: HashSet<String>,
}

impl Pages {
    /// A listing of `what` (e.g. `ConnectWise company/companies`), capped at [`MAX_PAGES`].
    pub fn new(system: System, what: impl Into<String>) -> Self {
        Self::with_cap(system, what, MAX_PAGES)
    }

    pub fn with_cap(system: System, what: impl Into<String>, cap: usize) -> Self {
        Pages {
            system,
            what: what.into(),
            cap,
            read: 1,
            cursors: HashSet::new(),
        }
    }

    /// Before the next page, asked for with `cursor`: refused when the cursor was seen in this
    /// listing already (no progress) or the cap is reached.
    pub fn next(&mut self, cursor: &str) -> Result<(), PortError> {
        if !self.cursors.insert(cursor.to_owned()) {
            return Err(self.refused(format!(
                "the vendor asked for a page it gave already ({cursor}); paging stopped"
            )));
        }
        self.read += 1;
        if self.read > self.cap {
            return Err(self.refused(format!("more than {} pages; paging stopped", self.cap)));
        }
        Ok(())
    }

    fn refused(&self, why: String) -> PortError {
        PortError::Rejected {
            system: self.system,
            message: format!("{}: {why}", self.what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_rel_1_paging_requires_progress_and_stops_at_the_cap() {
        let mut p = Pages::new(System::Psa, "ConnectWise company/companies");
        p.next("1000").unwrap();
        p.next("2000").unwrap();
        let e = p.next("1000").unwrap_err();
        assert!(
            e.to_string().contains("ConnectWise company/companies")
                && e.to_string().contains("a page it gave already (1000)"),
            "{e}"
        );

        let mut p = Pages::with_cap(System::Platform, "platform tenants", 3);
        p.next("a").unwrap();
        p.next("b").unwrap();
        let e = p.next("c").unwrap_err();
        assert!(e.to_string().contains("more than 3 pages"), "{e}");
        assert!(!e.is_retryable());
    }
}
