//! [`Routes`]: the one way the fakes register their vendor routes. It keeps the list of
//! `(method, path template)` pairs beside the axum router, so each fake's `routes()` lists
//! exactly what it serves; the conformance test (`tests/conformance.rs`) checks every pair
//! against the vendor's spec and probes that no unlisted method is served on a listed path.

use axum::{routing::MethodRouter, Router};

/// A router that records its routes (`methods` is space-separated: `"GET POST"`).
pub(crate) struct Routes<S> {
    router: Router<S>,
    list: Vec<(String, String)>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub(crate) fn new() -> Self {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    /// Registers `path` with the method router `mr`, which must serve exactly `methods`.
    pub(crate) fn route(mut self, methods: &str, path: &str, mr: MethodRouter<S>) -> Self {
        for m in methods.split_whitespace() {
            self.list.push((m.to_string(), path.to_string()));
        }
        self.router = self.router.route(path, mr);
        self
    }

    pub(crate) fn merge(mut self, other: Routes<S>) -> Self {
        self.list.extend(other.list);
        self.router = self.router.merge(other.router);
        self
    }

    /// The router and its `(method, path template)` list, sorted.
    pub(crate) fn into_parts(self) -> (Router<S>, Vec<(String, String)>) {
        let mut list = self.list;
        list.sort();
        list.dedup();
        (self.router, list)
    }
}
