//! webhook-receiver — placeholder until its issue lands: it builds, deploys and answers
//! 501 Not Implemented with a JSON body, so a caller retries later.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    lambda_http::run(service_fn(|_req: Request| async move {
        Response::builder()
            .status(501)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"error":"webhook-receiver is not implemented yet"}"#,
            ))
            .map_err(Error::from)
    }))
    .await
}
