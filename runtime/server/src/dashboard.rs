//! The dashboard: a few pages in the browser, served at `/` by the daemon and by a team
//! server, from files embedded in the binary (nothing fetched from anywhere else).
//!
//! The pages are static; their script reads the REST API with a token it sends in an
//! `Authorization` header, never a cookie, so another site cannot ride the session: a
//! request it makes carries no token, and without CORS it cannot read an answer.
//!
//! - **Daemon:** `strata dashboard` asks `POST /api/v1/dashboard/links` (with the
//!   daemon's token) for a one-time code, valid [`LINK_TTL`], and prints (or opens)
//!   `http://127.0.0.1:PORT/#code=CODE`. The code is in the fragment, which the browser
//!   never sends anywhere. The page trades it once at `POST /api/v1/dashboard/session`
//!   for a session token, valid [`SESSION_TTL`] or until the daemon stops, then removes
//!   it from the address bar. The `Host` check stays, on the pages too.
//! - **Team server:** the page asks for the user's own API token (`strata server token
//!   create`), and every request it makes is that user's, with that user's role.
//!
//! Every response carries a Content-Security-Policy that allows scripts, styles and
//! requests from the page's own origin only, no inline script, and no framing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use super::routes::ApiError;
use super::server::Shared;

/// How long a link printed by `strata dashboard` may be opened.
pub const LINK_TTL: Duration = Duration::from_secs(120);
/// How long a dashboard session lasts (it also ends when the daemon stops).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many links waiting to be opened, and sessions: the oldest go first.
const MAX_LINKS: usize = 32;
const MAX_SESSIONS: usize = 256;

/// The policy every response carries: the page's own scripts, styles and API only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("dashboard/icon.svg"),
    ),
];
const INDEX: &str = include_str!("dashboard/index.html");

/// One-time codes and the sessions they opened, by the SHA-256 of their secret (a
/// memory dump of the daemon gives neither).
#[derive(Default)]
pub struct Sessions {
    links: Mutex<HashMap<[u8; 32], Instant>>,
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Keeps `map` to `max` entries that have not expired, removing the oldest.
fn prune(map: &mut HashMap<[u8; 32], Instant>, max: usize) {
    let now = Instant::now();
    map.retain(|_, until| *until > now);
    while map.len() >= max {
        let Some(oldest) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) else {
            break;
        };
        map.remove(&oldest);
    }
}

impl Sessions {
    /// A new one-time code.
    pub fn link(&self) -> String {
        let code = hex::encode(rand::random::<[u8; 24]>());
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut links, MAX_LINKS);
        links.insert(digest(&code), Instant::now() + LINK_TTL);
        code
    }

    /// The code traded for a session token, once.
    fn open(&self, code: &str) -> Option<String> {
        let until = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(code))?;
        if until <= Instant::now() {
            return None;
        }
        let token = format!("dash_{}", hex::encode(rand::random::<[u8; 32]>()));
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut sessions, MAX_SESSIONS);
        sessions.insert(digest(&token), Instant::now() + SESSION_TTL);
        Some(token)
    }

    /// Whether `token` is a session's that has not ended.
    pub fn valid(&self, token: &str) -> bool {
        if !token.starts_with("dash_") {
            return false;
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest(token))
            .is_some_and(|until| *until > Instant::now())
    }

    fn close(&self, token: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(token))
            .is_some()
    }
}

/// Paths anyone may fetch (after the daemon's `Host` check): the pages, and on a daemon
/// trading a one-time code (a team server has none).
pub fn open_path(method: &Method, path: &str, team: bool) -> bool {
    (*method == Method::GET || *method == Method::HEAD)
        && (path == "/" || path == "/index.html" || path.starts_with("/assets/"))
        || (!team && *method == Method::POST && path == "/api/v1/dashboard/session")
}

/// What a dashboard session may do on a daemon: read (but not secret values), and what
/// the pages' buttons do: bring stacks and components up and down, set the active
/// stack, verify a connector, log out. Not run a pipeline, restore a backup, stop the
/// daemon, upload code, or make a link (a session does not renew itself).
pub fn session_may(method: &Method, path: &str, query: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return !super::access::reveals(query);
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        (method.as_str(), seg.as_slice()),
        ("POST", ["api", "v1", "stacks", _, "up" | "down"])
            | ("POST", ["api", "v1", "components", _, _, "up" | "down"])
            | ("POST", ["api", "v1", "service-connectors", _, "verify"])
            | ("PUT", ["api", "v1", "active-stack"])
            | ("DELETE", ["api", "v1", "dashboard", "session"])
    )
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{file}", get(asset))
        .route("/api/v1/dashboard/links", post(new_link))
        .route(
            "/api/v1/dashboard/session",
            post(new_session).delete(end_session),
        )
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The page, told whether it is served by a daemon (one-time links) or a team server
/// (a token to log in with).
async fn index(State(st): State<Shared>) -> Response {
    let mode = if st.is_team() { "team" } else { "daemon" };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        INDEX.replace("{{mode}}", mode),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => page(kind, body),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the dashboard has no file `{file}`"),
            "open the dashboard at `/`",
        )
        .into_response(),
    }
}

fn daemon_only(st: &Shared) -> Result<(), ApiError> {
    if st.is_team() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "a team server's dashboard has no one-time links".into(),
            "open the server's address in a browser and log in with your API token (an admin makes one with `strata server token create USER`)",
        ));
    }
    Ok(())
}

/// `POST /api/v1/dashboard/links`: a one-time code for the dashboard, and the link
/// that opens it (what `strata dashboard` prints).
async fn new_link(State(st): State<Shared>) -> Result<Response, ApiError> {
    daemon_only(&st)?;
    let code = st.dash.link();
    let body = serde_json::json!({
        "url": format!("http://{}/#code={code}", st.address()),
        "code": code,
        "expires_in_s": LINK_TTL.as_secs(),
    });
    Ok(secret_answer(body))
}

/// An answer that holds a secret (a code, a token): kept by no cache.
fn secret_answer(body: serde_json::Value) -> Response {
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

/// `POST /api/v1/dashboard/session`: a one-time code traded for a session token.
async fn new_session(
    State(st): State<Shared>,
    body: Result<axum::Json<CodeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    daemon_only(&st)?;
    let axum::Json(CodeBody { code }) = body.map_err(ApiError::bad_body)?;
    let Some(token) = st.dash.open(&code) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this dashboard link was used already, has expired, or is not one this daemon made"
                .into(),
            "run `strata dashboard` for a new link (each opens the dashboard once, within 2 minutes)",
        ));
    };
    let body = serde_json::json!({"token": token, "expires_in_s": SESSION_TTL.as_secs()});
    Ok(secret_answer(body))
}

/// `DELETE /api/v1/dashboard/session`: ends the session whose token the request carries.
async fn end_session(State(st): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    daemon_only(&st)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !st.dash.close(token) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the request's token is not a dashboard session".into(),
            "send the session's token (the daemon's own token is not one, and cannot be ended)",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The headers every response carries: the page's policy, and no sniffing, referrer or
/// framing. Also written by hand on the answers the connection layer sends itself
/// (`connections::response`), so no answer goes out without them.
pub const HARDENING: [(&str, &str); 6] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// Adds [`HARDENING`] to `headers`, replacing what a handler set.
pub fn harden(headers: &mut HeaderMap) {
    for (name, value) in HARDENING {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_opens_one_session_once() {
        let s = Sessions::default();
        let code = s.link();
        let token = s.open(&code).expect("a fresh code opens");
        assert!(s.valid(&token));
        assert!(s.open(&code).is_none(), "a code is used once");
        assert!(!s.valid(&code), "a code is not a session");
        assert!(!s.valid("dash_00"), "an unknown token is not");
        assert!(s.close(&token));
        assert!(!s.valid(&token), "a closed session ends");
    }

    #[test]
    fn links_and_sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.link();
        for _ in 0..MAX_LINKS {
            s.link();
        }
        assert!(s.open(&first).is_none(), "the oldest link went first");
        assert!(s.links.lock().unwrap().len() <= MAX_LINKS);
    }

    #[test]
    fn pages_are_open_and_the_api_is_not() {
        for team in [false, true] {
            assert!(open_path(&Method::GET, "/", team));
            assert!(open_path(&Method::GET, "/assets/app.js", team));
            assert!(!open_path(
                &Method::DELETE,
                "/api/v1/dashboard/session",
                team
            ));
            assert!(!open_path(&Method::POST, "/api/v1/dashboard/links", team));
            assert!(!open_path(&Method::GET, "/api/v1/stacks", team));
            assert!(!open_path(&Method::POST, "/", team));
        }
        assert!(open_path(&Method::POST, "/api/v1/dashboard/session", false));
        assert!(!open_path(&Method::POST, "/api/v1/dashboard/session", true));
    }

    #[test]
    fn a_session_reads_and_presses_the_pages_buttons_only() {
        let may = |m: Method, p: &str, q: &str| session_may(&m, p, q);
        assert!(may(Method::GET, "/api/v1/stacks", ""));
        assert!(may(Method::GET, "/api/v1/secrets/db", ""));
        assert!(may(Method::POST, "/api/v1/stacks/prod/up", ""));
        assert!(may(
            Method::POST,
            "/api/v1/components/alerter/ops/down",
            "force=true"
        ));
        assert!(may(Method::PUT, "/api/v1/active-stack", ""));
        assert!(may(
            Method::POST,
            "/api/v1/service-connectors/hooks/verify",
            ""
        ));
        assert!(may(Method::DELETE, "/api/v1/dashboard/session", ""));
        for reveal in [
            "reveal=true",
            "REVEAL=1",
            "reveal=%74rue",
            "x=1&reveal",
            "re%76eal=yes",
        ] {
            assert!(!may(Method::GET, "/api/v1/secrets/db", reveal), "{reveal}");
        }
        assert!(may(Method::GET, "/api/v1/secrets/db", "reveal=false"));
        for (m, p) in [
            (Method::POST, "/api/v1/pipelines/run"),
            (Method::POST, "/api/v1/restore"),
            (Method::POST, "/api/v1/backup"),
            (Method::POST, "/api/v1/daemon/stop"),
            (Method::POST, "/api/v1/dashboard/links"),
            (Method::POST, "/api/v1/flavors/alerter"),
            (Method::POST, "/api/v1/secrets"),
            (Method::DELETE, "/api/v1/stacks/prod"),
            (Method::PATCH, "/api/v1/components/alerter/ops"),
            (Method::POST, "/api/v1/stacks/prod/up/x"),
        ] {
            assert!(!may(m.clone(), p, ""), "{m} {p}");
        }
    }
}
