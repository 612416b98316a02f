//! Authentication of the fake platform: `POST /api/2/idp/token` (client credentials, Basic or
//! form), bearer tokens checked against the fake clock, `GET /clients/{id}`, and the request
//! wrapper that runs a handler for the authenticated client under the state lock.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    routes::Pf,
    state::PfState,
    wire::{am_error, forbidden, not_found, rfc3339},
    TOKEN_TTL_SECS,
};
use crate::common::{self, basic_credentials, lock, Routes, Server};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route("POST", "/api/2/idp/token", post(token))
        .route("GET", "/api/2/clients/{client_id}", get(get_client))
}

/// The authenticated API client.
pub(super) struct Principal {
    pub(super) tenant_id: String,
    pub(super) client_id: String,
}

impl Server<PfState> {
    /// Authenticates the bearer token and runs `f` under the state lock.
    /// The closure's result is turned into a response (serialized) after the lock is released.
    pub(super) fn authed<R: IntoResponse>(
        &self,
        headers: &HeaderMap,
        f: impl FnOnce(&mut PfState, &Principal, DateTime<Utc>) -> R,
    ) -> Response {
        match self.authed_inner(headers, f) {
            Ok(r) => r.into_response(),
            Err(e) => e,
        }
    }

    fn authed_inner<R>(
        &self,
        headers: &HeaderMap,
        f: impl FnOnce(&mut PfState, &Principal, DateTime<Utc>) -> R,
    ) -> Result<R, Response> {
        let now = self.common.clock.now();
        let mut st = lock(&self.state);
        let unauthorized = |m: &str| am_error(StatusCode::UNAUTHORIZED, "Unauthorized", m);
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_string())
            });
        let Some(token) = token else {
            return Err(unauthorized(
                "Method requires an authenticated user (Bearer token missing).",
            ));
        };
        let Some((client_id, expires)) = st.tokens.get(&token).cloned() else {
            return Err(unauthorized("Access token is invalid."));
        };
        if expires <= now {
            return Err(unauthorized("Access token has expired."));
        }
        let Some(client) = st.clients.get_mut(&client_id) else {
            return Err(unauthorized("Client not found."));
        };
        client.last_access_at = Some(now);
        let p = Principal {
            tenant_id: client.tenant_id.clone(),
            client_id,
        };
        Ok(f(&mut st, &p, now))
    }
}

async fn token(State(s): State<Pf>, headers: HeaderMap, body: Bytes) -> Response {
    let now = s.common.clock.now();
    let mut st = lock(&s.state);
    st.token_requests += 1;
    let token_error = |status: StatusCode, error: &str, description: &str| {
        common::json_response(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Grant type '{other}' is not supported."),
            )
        }
        None => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            )
        }
    }
    let creds = basic_credentials(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let Some((client_id, secret)) = creds else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Client credentials are missing.",
        );
    };
    match st.clients.get(&client_id) {
        Some(c) if c.secret == secret => {}
        _ => {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "access_denied",
                "Invalid client credentials.",
            )
        }
    }
    let access_token = format!("sbx.{}", uuid::Uuid::new_v4().simple());
    let expires = now + chrono::Duration::seconds(TOKEN_TTL_SECS);
    st.tokens
        .insert(access_token.clone(), (client_id.clone(), expires));
    let id_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"sub": client_id, "iat": now.timestamp()}).to_string());
    common::json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_SECS,
            "expires_on": expires.timestamp(),
            "id_token": format!("eyJhbGciOiJub25lIn0.{id_payload}."),
        }),
    )
}

async fn get_client(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        if id != p.client_id {
            return match st.clients.get(&id) {
                Some(_) => forbidden("Access to this client is denied."),
                None => not_found(&format!("Client {id} not found.")),
            };
        }
        let c = &st.clients[&id];
        common::json_response(
            StatusCode::OK,
            &json!({
                "client_id": c.client_id,
                "tenant_id": c.tenant_id,
                "type": "api_client",
                "status": "enabled",
                "data": {"client_name": c.name},
                "token_endpoint_auth_method": "client_secret_basic",
                "client_secret_expires_at": 0,
                "created_at": rfc3339(&c.created_at),
                "last_access_at": c.last_access_at.as_ref().map(rfc3339),
                // required by the schema; the fake's clients are made by its root admin
                "created_by": st.root_id,
                "last_access_from_ip": c.last_access_at.map(|_| "127.0.0.1"),
            }),
        )
    })
}
