//! webhook-receiver: `POST /hooks/{partner}/{token}/{source}` (source `connectwise`,
//! `autotask` or `platform`) behind API Gateway. Authenticates, dedupes and puts the delivery on
//! the bus (`PsaChanged`, `PlatformAlert`) before answering — the domain's
//! `services::webhooks::accept`; this crate only reads the HTTP request and writes the answer.

use domain::ports::{Clock, Deliveries, Events, HookSecrets, PartnerStore, SigningKeys};
use domain::rules::webhooks::Source;
use domain::services::webhooks::{accept, Delivery, HookAnswer, HookPorts};
use lambda_http::{Body, Request, RequestExt, Response};
use std::sync::Arc;

/// What the handler needs, built once per process.
#[derive(Clone)]
pub struct Deps {
    pub partners: Arc<dyn PartnerStore>,
    pub secrets: Arc<dyn HookSecrets>,
    pub deliveries: Arc<dyn Deliveries>,
    pub keys: Arc<dyn SigningKeys>,
    pub events: Arc<dyn Events>,
    pub clock: Arc<dyn Clock>,
}

/// The route's three parameters: from API Gateway's path parameters, else (a local server)
/// from the path itself — the three segments after `hooks`.
fn route(req: &Request) -> Option<(String, String, String)> {
    let params = req.path_parameters();
    if let (Some(p), Some(t), Some(s)) = (
        params.first("partner"),
        params.first("token"),
        params.first("source"),
    ) {
        return Some((p.to_owned(), t.to_owned(), s.to_owned()));
    }
    let mut segs = req
        .uri()
        .path()
        .split('/')
        .skip_while(|s| *s != "hooks")
        .skip(1);
    match (segs.next(), segs.next(), segs.next(), segs.next()) {
        (Some(p), Some(t), Some(s), None) => Some((p.to_owned(), t.to_owned(), s.to_owned())),
        _ => None,
    }
}

fn respond(a: &HookAnswer) -> Response<Body> {
    let mut b = Response::builder()
        .status(a.status)
        .header("content-type", "application/json");
    if let Some(s) = a.retry_after {
        b = b.header("retry-after", s.to_string());
    }
    b.body(Body::from(a.body.to_string()))
        .expect("a response with a valid status and headers")
}

/// The Lambda entry point's logic: one delivery, one answer.
pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let not_found = HookAnswer {
        status: 404,
        body: serde_json::json!({"error": "no such endpoint: POST /hooks/{partner}/{token}/{connectwise|autotask|platform}"}),
        retry_after: None,
    };
    let Some((partner, token, source)) = route(&req) else {
        return respond(&not_found);
    };
    if req.method() != lambda_http::http::Method::POST {
        return respond(&HookAnswer {
            status: 405,
            body: serde_json::json!({"error": "webhooks are POSTed"}),
            retry_after: None,
        });
    }
    let signature = Source::parse(&source)
        .ok()
        .and_then(|s| req.headers().get(s.signature_header()))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = req
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let ports = HookPorts {
        partners: deps.partners.as_ref(),
        secrets: deps.secrets.as_ref(),
        deliveries: deps.deliveries.as_ref(),
        keys: deps.keys.as_ref(),
        events: deps.events.as_ref(),
    };
    let delivery = Delivery {
        partner: &partner,
        token: &token,
        source: &source,
        body: req.body().as_ref(),
        signature: signature.as_deref(),
        request_id: &request_id,
    };
    let outcome = accept(&ports, &delivery, deps.clock.now()).await;
    respond(&outcome.answer(&source))
}
