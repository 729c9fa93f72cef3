//! The REST API under `/api/v1`: every operation of the CLI as a resource, for programs.
//! `openapi.json` (served at `/api/v1/openapi.json`) describes each route; errors are
//! `{"error":{"code","message","hint"}}` with the status saying why.
//!
//! Each handler runs its service call on tokio's blocking pool (flavor calls and sled
//! flushes block). Changes to the catalog hold [`Service::catalog_lock`]; `up` and `down`
//! answer `202 Accepted` at once with an operation to poll.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::server::Shared;
use crate::api::{ErrorBody, OpState, Operation};
use crate::error::{Error, ErrorKind};
use crate::model::{ComponentType, LimitOverrides, now_ms};
use crate::service::{FlavorOptions, Progress, Service, StackExport};

/// The OpenAPI 3.1 description of this API, kept in the repository next to this file.
pub const OPENAPI: &str = include_str!("openapi.json");

pub use crate::api::{MAX_BODY, MAX_UPLOAD};

/// The deadline a flavor or a component may set, in milliseconds, and its memory cap in
/// MiB: the service's ranges, checked here first so that a REST caller is told about
/// the field it wrote (`timeout_ms`), not the CLI's flag (`--timeout-ms`). The
/// end-to-end tests keep the two the same at both ends.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 10..=600_000;
pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 1..=4096;

/// The most lines `GET /api/v1/daemon/logs` returns.
pub const MAX_LOG_LINES: usize = 100_000;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/v1/daemon", get(daemon_info))
        .route("/api/v1/daemon/stop", post(daemon_stop))
        .route("/api/v1/daemon/logs", get(daemon_logs))
        .route("/api/v1/init", post(init))
        .route("/api/v1/stacks", get(stack_list).post(stack_register))
        .route("/api/v1/stacks/import", post(stack_import))
        .route(
            "/api/v1/stacks/{name}",
            get(stack_describe).patch(stack_update).delete(stack_delete),
        )
        .route("/api/v1/stacks/{name}/export", get(stack_export))
        .route("/api/v1/stacks/{name}/rename", post(stack_rename))
        .route("/api/v1/stacks/{name}/copy", post(stack_copy))
        .route(
            "/api/v1/stacks/{name}/components/{type}",
            axum::routing::delete(stack_remove_component),
        )
        .route(
            "/api/v1/stacks/{name}/components/{type}/{component}",
            axum::routing::delete(stack_remove_one),
        )
        .route("/api/v1/stacks/{name}/up", post(stack_up))
        .route("/api/v1/stacks/{name}/down", post(stack_down))
        .route("/api/v1/active-stack", get(active_get).put(active_set))
        .route("/api/v1/active-stack/up", post(active_up))
        .route("/api/v1/active-stack/down", post(active_down))
        .route(
            "/api/v1/components/{type}",
            get(component_list).post(component_register),
        )
        .route(
            "/api/v1/components/{type}/{name}",
            get(component_describe)
                .patch(component_update)
                .delete(component_delete),
        )
        .route(
            "/api/v1/components/{type}/{name}/rename",
            post(component_rename),
        )
        .route(
            "/api/v1/components/{type}/{name}/copy",
            post(component_copy),
        )
        .route(
            "/api/v1/components/{type}/{name}/config/{key}",
            axum::routing::delete(component_remove_attribute),
        )
        .route("/api/v1/components/{type}/{name}/up", post(component_up))
        .route(
            "/api/v1/components/{type}/{name}/down",
            post(component_down),
        )
        .route("/api/v1/components/{type}/{name}/post", post(alerter_post))
        .route(
            "/api/v1/artifact-stores/{name}/files",
            get(artifact_get)
                .put(artifact_put)
                .delete(artifact_remove)
                .layer(DefaultBodyLimit::max(
                    crate::service::MAX_ARTIFACT_BYTES as usize,
                )),
        )
        .route("/api/v1/artifact-stores/{name}/list", get(artifact_list))
        .route("/api/v1/artifact-stores/{name}/stat", get(artifact_stat))
        .route("/api/v1/flavors", get(flavor_list_all))
        .route(
            "/api/v1/flavors/{type}",
            get(flavor_list)
                .post(flavor_upload)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route(
            "/api/v1/flavors/{type}/{name}",
            get(flavor_describe).delete(flavor_delete),
        )
        .route("/api/v1/secrets", get(secret_list).post(secret_create))
        .route(
            "/api/v1/secrets/{name}",
            get(secret_get).patch(secret_update).delete(secret_delete),
        )
        .route("/api/v1/secrets/{name}/rename", post(secret_rename))
        .route(
            "/api/v1/service-connectors",
            get(connector_list).post(connector_register),
        )
        .route(
            "/api/v1/service-connectors/{name}",
            get(connector_describe)
                .patch(connector_update)
                .delete(connector_delete),
        )
        .route(
            "/api/v1/service-connectors/{name}/rename",
            post(connector_rename),
        )
        .route(
            "/api/v1/service-connectors/{name}/verify",
            post(connector_verify),
        )
        .route(
            "/api/v1/integrations",
            get(integration_list).post(integration_install_dir),
        )
        .route(
            "/api/v1/integrations/{name}",
            axum::routing::put(integration_install).delete(integration_uninstall),
        )
        .route("/api/v1/pipelines/run", post(pipeline_run))
        .route("/api/v1/runs", get(run_list))
        .route("/api/v1/runs/{id}", get(run_get).delete(run_delete))
        .route("/api/v1/runs/{id}/logs", get(run_logs))
        .route("/api/v1/runs/{id}/cancel", post(run_cancel))
        .route("/api/v1/backup", post(backup))
        .route("/api/v1/restore", post(restore))
        .route("/api/v1/operations", get(operation_list))
        .route("/api/v1/operations/{id}", get(operation_get))
        .route("/api/v1/operations/{id}/events", get(operation_events))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "there is no such route".to_string(),
                "the routes are listed in /api/v1/openapi.json",
            )
        })
}

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: String, hint: &str) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message,
                hint: hint.into(),
            },
        }
    }

    /// A body that is not the JSON the route takes.
    pub fn bad_body(e: JsonRejection) -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                e.body_text(),
                "a flavor's .wasm may be at most 64 MiB, any other body 2 MiB",
            );
        }
        // A missing or wrong Content-Type (axum's 415) is also "not this route's JSON".
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            e.body_text(),
            "send a JSON body as /api/v1/openapi.json describes, with `Content-Type: application/json`",
        )
    }

    /// A value outside what the route takes, named as the caller wrote it.
    pub fn invalid_field(field: &str, message: String, hint: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("`{field}` {message}"),
            hint,
        )
    }
}

/// A deadline and a memory cap as a REST caller gave them, checked against the ranges
/// the service takes; `at` is where they were (`""`, or `export.components[2].limits.`).
pub fn limits(
    at: &str,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
) -> Result<LimitOverrides, ApiError> {
    if caller().cli_words {
        // The service checks the same ranges, and words them as the CLI's flags.
        return Ok(LimitOverrides {
            timeout_ms,
            memory_mb,
        });
    }
    if let Some(t) = timeout_ms.filter(|t| !TIMEOUT_MS.contains(t)) {
        return Err(ApiError::invalid_field(
            &format!("{at}timeout_ms"),
            format!("is {t}, out of range"),
            &format!(
                "give a deadline from {} to {} milliseconds",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            ),
        ));
    }
    if let Some(m) = memory_mb.filter(|m| !MEMORY_MB.contains(m)) {
        return Err(ApiError::invalid_field(
            &format!("{at}memory_mb"),
            format!("is {m}, out of range"),
            &format!(
                "give a cap from {} to {} MiB",
                MEMORY_MB.start(),
                MEMORY_MB.end()
            ),
        ));
    }
    Ok(LimitOverrides {
        timeout_ms,
        memory_mb,
    })
}

/// The service words options as the CLI's flags; a REST caller sets fields and query
/// parameters of the same names instead.
const CLI_TO_REST: [(&str, &str); 4] = [
    ("pass --force", "set `force` to true"),
    ("pass --replace", "set `replace` to true"),
    ("--timeout-ms ", "`timeout_ms` "),
    ("--memory-mb ", "`memory_mb` "),
];

fn for_rest(text: String) -> String {
    CLI_TO_REST.iter().fold(text, |t, (cli, rest)| {
        if t.contains(cli) {
            t.replace(cli, rest)
        } else {
            t
        }
    })
}

/// Who asks, as the request's headers say: set around each request by the server.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// Errors worded for the command line ([`crate::api::WORDING_HEADER`]).
    pub cli_words: bool,
    /// The caller's working directory ([`crate::api::CWD_HEADER`]), which relative
    /// paths in the request are taken from; empty when it sent none (then a relative
    /// path is refused).
    pub cwd: std::path::PathBuf,
    /// `Accept: text/event-stream`: `up` and `down` answer with the operation's events
    /// at once (as `/api/v1/operations/{id}/events` would), in one request.
    pub events: bool,
    /// On a team server, who makes the request (checked before any route runs).
    pub who: Option<crate::service::Principal>,
    /// `If-Match`: the version of the stack or component (its ETag) the change was
    /// made from; a change to a record stored since is refused with 412.
    pub if_match: Option<String>,
    /// The request's path, which names the record `If-Match` is about.
    pub path: String,
    /// Whether it is a GET (a read of a stack or component carries its `ETag`).
    pub get: bool,
    /// On a team server, what the route needs: checked before the route runs, and
    /// again once a change holds the catalog lock (a grant may have changed meanwhile).
    pub need: Option<crate::service::Need>,
}

tokio::task_local! {
    pub static CALLER: Caller;
}

fn caller() -> Caller {
    CALLER.try_with(Caller::clone).unwrap_or_default()
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::worded(e, caller().cli_words)
    }
}

impl ApiError {
    /// The API's answer for `e`. A bug or a store failure is logged whole and answered
    /// without its details, which are the daemon's, not the caller's; damaged data is
    /// named, as the caller must act on it.
    pub fn worded(e: Error, cli: bool) -> ApiError {
        let e = match e {
            Error::Internal(_) | Error::Store { .. } | Error::Io { .. } => {
                let reference = &crate::service::new_id()[..8];
                super::server::log(&format!("internal error {reference}: {e}"));
                Error::Internal(format!(
                    "strata hit an internal error (reference {reference} in the daemon's log)"
                ))
            }
            e => e,
        };
        let (status, code) = match (&e, e.kind()) {
            (Error::Config { .. }, _) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_config"),
            (Error::NotAFlavor { .. }, _) => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_flavor"),
            (Error::Sandbox { .. }, _) => (StatusCode::UNPROCESSABLE_ENTITY, "flavor_fault"),
            (Error::Flavor { .. }, _) => (StatusCode::UNPROCESSABLE_ENTITY, "flavor_failed"),
            (_, ErrorKind::NotFound) => (StatusCode::NOT_FOUND, "not_found"),
            (_, ErrorKind::Conflict) => (StatusCode::CONFLICT, "already_exists"),
            (_, ErrorKind::Locked) => (StatusCode::CONFLICT, "locked"),
            (_, ErrorKind::Invalid | ErrorKind::Failed) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            (_, ErrorKind::Internal) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (_, ErrorKind::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            (_, ErrorKind::Forbidden) => (StatusCode::FORBIDDEN, "forbidden"),
            (_, ErrorKind::Stale) => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
        };
        let hint = match e.hint() {
            h if h.is_empty() && status.is_server_error() => {
                "this is a bug in strata, or damaged data: `strata daemon logs` may say more; please report it".to_string()
            }
            h if h.is_empty() && !cli => "see the route in /api/v1/openapi.json".to_string(),
            h => h,
        };
        let (message, hint) = match cli {
            true => (e.to_string(), hint),
            false => (for_rest(e.to_string()), for_rest(hint)),
        };
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message,
                hint,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.body })),
        )
            .into_response()
    }
}

pub(crate) type Reply = Result<Response, ApiError>;

/// Answers every error in the API's JSON form, also those axum makes itself before a
/// handler runs (a method the route does not take, a body over the size limit, a path
/// parameter that does not parse): a client parses one shape of error, always.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, message, hint) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("this route does not take {method}"),
            "the `Allow` header lists the methods it takes; all are in /api/v1/openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            format!(
                "the body is too large{}",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                }
            ),
            "a flavor's .wasm may be at most 64 MiB, any other body 2 MiB",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "bad_request",
            text,
            "send JSON with `Content-Type: application/json`",
        ),
        s if s.is_server_error() => (
            "internal",
            text,
            "this is a bug in strata: `strata daemon logs` may say more; please report it",
        ),
        _ => ("bad_request", text, "see the route in /api/v1/openapi.json"),
    };
    let mut answer = ApiError::new(status, code, message, hint).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// Runs `f` on the blocking pool; with `lock`, under the catalog lock. A REST request
/// has no working directory: a relative path in it is refused, not resolved against
/// wherever the daemon runs.
pub(crate) async fn call<T: Serialize + Send + 'static>(
    st: Shared,
    status: StatusCode,
    lock: bool,
    f: impl FnOnce(&Service) -> crate::error::Result<T> + Send + 'static,
) -> Reply {
    answer(st, lock, f, move |out| match out {
        _ if status == StatusCode::NO_CONTENT => status.into_response(),
        out => (status, axum::Json(out)).into_response(),
    })
    .await
}

/// [`call`] for a route that answers bytes (`application/octet-stream`).
async fn call_bytes(
    st: Shared,
    f: impl FnOnce(&Service) -> crate::error::Result<Vec<u8>> + Send + 'static,
) -> Reply {
    answer(st, false, f, |bytes| {
        ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
    })
    .await
}

/// Runs `f` as [`call`] says, and makes its value the response with `ok`.
async fn answer<T: Send + 'static>(
    st: Shared,
    lock: bool,
    f: impl FnOnce(&Service) -> crate::error::Result<T> + Send + 'static,
    ok: impl FnOnce(T) -> Response,
) -> Reply {
    let Caller {
        cwd,
        who,
        if_match,
        path,
        get,
        need,
        ..
    } = caller();
    let team = who.is_some();
    let (out, tag, warnings, logs) = tokio::task::spawn_blocking(move || {
        let svc = st.svc.as_user(cwd, who);
        let mut tag = None;
        let out = (|| {
            let _catalog = lock.then(|| svc.catalog_lock()).transpose()?;
            let _fresh = svc.store().fresh_reads()?;
            if lock && let Some(need) = &need {
                svc.require(need)?;
            }
            // Versions are a team server's (a local daemon's one user has no one to race).
            if team && let Some(expected) = &if_match {
                super::access::check_if_match(&svc, &path, expected)?;
            }
            // The version is read before the record the handler reads: a change landing
            // in between gives an older tag with a newer body, and an If-Match built on
            // that body is refused (412), never applied over the change.
            if team && get && super::access::names_record(&path) {
                tag = super::access::etag(&svc, &path)?;
            }
            f(&svc)
        })();
        (out, tag, svc.take_warnings(), svc.take_logs())
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(format!("a request handler failed: {e}"))))?;
    let mut response = match out {
        Ok(out) => ok(out),
        Err(e) => ApiError::from(e).into_response(),
    };
    if let Some(tag) = tag.filter(|_| response.status().is_success())
        && let Ok(v) = axum::http::HeaderValue::from_str(&tag)
    {
        response.headers_mut().insert(header::ETAG, v);
    }
    notes(response.headers_mut(), &warnings, &logs);
    Ok(response)
}

/// Adds a call's warnings and flavor logs to its response, as headers (see
/// [`crate::api::WARNING_HEADER`]); past [`crate::api::MAX_NOTES_BYTES`] the oldest log
/// lines are dropped and a last one says how many.
fn notes(headers: &mut axum::http::HeaderMap, warnings: &[String], logs: &[String]) {
    use crate::api::{LOG_HEADER, MAX_NOTE_HEADERS, MAX_NOTES_BYTES, WARNING_HEADER, note_header};
    let mut put = |name: &'static str, text: &str| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&note_header(text)) {
            headers.append(name, v);
        }
    };
    for w in warnings {
        put(WARNING_HEADER, w);
    }
    let room = MAX_NOTES_BYTES.saturating_sub(warnings.iter().map(|w| note_header(w).len()).sum());
    let sizes: Vec<usize> = logs.iter().map(|l| note_header(l).len()).collect();
    let mut skip = 0;
    let mut total: usize = sizes.iter().sum();
    // One header is kept for the line that says how many were dropped.
    let lines_room = MAX_NOTE_HEADERS.saturating_sub(warnings.len() + 1);
    while (total > room.saturating_sub(128) || logs.len() - skip > lines_room) && skip < logs.len()
    {
        total -= sizes[skip];
        skip += 1;
    }
    if skip > 0 {
        put(
            LOG_HEADER,
            &format!(
                "({skip} earlier log lines dropped: a response carries at most {MAX_NOTE_HEADERS} lines, {} KiB)",
                MAX_NOTES_BYTES / 1024
            ),
        );
    }
    for l in &logs[skip..] {
        put(LOG_HEADER, l);
    }
}

/// A request body that is JSON, before it is read as the route's type by [`body`].
pub(crate) type JsonBody = Result<axum::Json<serde_json::Value>, JsonRejection>;

/// The route's type read from its JSON body. JSON (and the document's JSON Schema)
/// counts `10.0` as the integer 10, so a whole number written with a fraction is taken
/// as the integer it is.
pub(crate) fn body<T: serde::de::DeserializeOwned>(b: JsonBody) -> Result<T, ApiError> {
    let v = b.map(|axum::Json(v)| v).map_err(ApiError::bad_body)?;
    serde_json::from_value(whole_numbers(v)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not this route's JSON: {e}"),
            "send a JSON body as /api/v1/openapi.json describes, with `Content-Type: application/json`",
        )
    })
}

/// `v` with every number that is whole (`10.0`, `-3e2`) written as an integer.
fn whole_numbers(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    // Integers above 2^53 are not exact as floats; those are left as they were written.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && (0.0..=EXACT).contains(&f) => {
                Value::from(f as u64)
            }
            Some(f) if n.is_f64() && f.fract() == 0.0 && (-EXACT..0.0).contains(&f) => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(whole_numbers).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, whole_numbers(v))).collect())
        }
        v => v,
    }
}

/// An optional field that, when given, holds a value: `null` is refused, as the
/// document allows none.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// An I/O error on a path the caller gave (a directory where a file should be, no
/// permission, no such directory) is the caller's to fix, not a bug: a 422.
fn on_given_path(e: Error) -> Error {
    match e {
        Error::Io { context, source } => Error::invalid(
            format!("{context}: {source}"),
            "give a path the daemon can use: its user must be able to write a backup there, and to read a file or directory given",
        ),
        e => e,
    }
}

/// A query string as the route takes it, or its rejection (answered as a JSON 400).
pub(crate) type QueryResult<T> = Result<Query<T>, QueryRejection>;

pub(crate) fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            e.body_text(),
            "see the route's parameters in /api/v1/openapi.json (booleans are `true` or `false`)",
        )
    })
}

fn component_type(s: &str) -> Result<ComponentType, ApiError> {
    s.parse().map_err(ApiError::from)
}

async fn daemon_info(State(st): State<Shared>) -> Response {
    axum::Json(st.info()).into_response()
}

/// `POST /api/v1/daemon/stop`: the same graceful stop as SIGTERM, answered before it begins.
async fn daemon_stop(State(st): State<Shared>) -> Response {
    super::server::log("stop requested over the API: not accepting new requests");
    let _ = st.stop.send(true);
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "stopping": true, "pid": std::process::id() })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    /// How many of the last lines (default 100).
    #[serde(default)]
    lines: Option<usize>,
}

/// `GET /api/v1/daemon/logs`: the last lines of `daemon.log`.
async fn daemon_logs(State(st): State<Shared>, q: QueryResult<LogsQuery>) -> Reply {
    let q = query(q)?;
    let n = q.lines.unwrap_or(100);
    if n > MAX_LOG_LINES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`lines` is {n}, over {MAX_LOG_LINES}"),
            "ask for at most 100000 lines",
        ));
    }
    call(st, StatusCode::OK, false, move |s| {
        let lines = super::read_log(s.home(), n)?;
        Ok(serde_json::json!({ "lines": lines }))
    })
    .await
}

/// `POST /api/v1/init`: the home is initialised when the daemon opens it, so this says
/// what `strata init` says then (nothing created).
async fn init(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.init()).await
}

// ---- stacks ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackBody {
    name: String,
    /// Component names by type: `{"orchestrator": "default", "step-operator": ["a","b"]}`.
    components: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    set_active: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn members(
    given: BTreeMap<String, OneOrMany>,
) -> Result<BTreeMap<ComponentType, Vec<String>>, ApiError> {
    given
        .into_iter()
        .map(|(t, v)| {
            let names = match v {
                OneOrMany::One(n) => vec![n],
                OneOrMany::Many(ns) => ns,
            };
            Ok((component_type(&t)?, names))
        })
        .collect()
}

async fn stack_list(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.stack_list()).await
}

async fn stack_register(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: StackBody = body(b)?;
    let components = members(b.components)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.stack_register(&b.name, components, b.set_active)
    })
    .await
}

async fn stack_describe(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| {
        s.stack_describe(Some(&name))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackPatch {
    /// Components to set, replacing those of the same type.
    #[serde(default, deserialize_with = "present")]
    components: Option<BTreeMap<String, OneOrMany>>,
    /// Components to take out; an empty list takes every one of that type.
    #[serde(default, deserialize_with = "present")]
    remove: Option<BTreeMap<String, OneOrMany>>,
}

async fn stack_update(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: StackPatch = body(b)?;
    let (set, remove) = match (b.components, b.remove) {
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body sets neither `components` nor `remove`".into(),
                "send `{\"components\": {\"orchestrator\": \"NAME\"}}` to set components, `{\"remove\": {\"step-operator\": [\"NAME\"]}}` to take them out",
            ));
        }
        (set, remove) => (
            set.map(members).transpose()?,
            remove.map(members).transpose()?,
        ),
    };
    call(st, StatusCode::OK, true, move |s| {
        // One change: both parts are checked before either is stored.
        match (set, remove) {
            (Some(set), Some(remove)) => s.stack_edit(&name, set, remove),
            (Some(set), None) => s.stack_update(&name, set),
            (None, Some(remove)) => s.stack_remove_component(&name, remove),
            (None, None) => unreachable!("refused above"),
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recursive {
    /// Also delete the components no other stack uses (`stack delete -r`).
    #[serde(default)]
    recursive: bool,
}

async fn stack_delete(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<Recursive>,
) -> Reply {
    if query(q)?.recursive {
        return call(st, StatusCode::OK, true, move |s| {
            Ok(serde_json::json!({ "deleted": s.stack_delete_recursive(&name)? }))
        })
        .await;
    }
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.stack_delete(&name)
    })
    .await
}

async fn stack_export(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| s.stack_export(&name)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    export: StackExport,
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn stack_import(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: ImportBody = body(b)?;
    // The service checks the file's stack name only when no other name is given; the
    // document states it for every file, and so does the API.
    if !crate::model::valid_object_name(&b.export.stack) {
        return Err(ApiError::invalid_field(
            "export.stack",
            format!("is `{}`, not a valid stack name", b.export.stack),
            "use letters, digits, `-`, `_` and `.` (not first), at most 128 characters",
        ));
    }
    for (i, c) in b.export.components.iter().enumerate() {
        limits(
            &format!("export.components[{i}].limits."),
            c.limits.timeout_ms,
            c.limits.memory_mb,
        )?;
    }
    call(st, StatusCode::CREATED, true, move |s| {
        s.stack_import(&b.export, b.name.as_deref(), b.force)
    })
    .await
}

#[derive(Deserialize)]
struct Force {
    #[serde(default)]
    force: bool,
}

/// `up` and `down` answer 404 at once for a stack or component that does not exist,
/// rather than accepting an operation bound to fail.
fn must_exist(
    st: &Shared,
    f: impl FnOnce(&Service) -> crate::error::Result<()>,
) -> Result<(), ApiError> {
    let c = caller();
    f(&st.svc.as_user(c.cwd, c.who)).map_err(ApiError::from)
}

/// The name of the active stack, for `/api/v1/active-stack/up` and `/down`.
fn active_name(st: &Shared) -> Result<String, ApiError> {
    let c = caller();
    st.svc
        .as_user(c.cwd, c.who)
        .stack_get()
        .map_err(ApiError::from)
}

async fn active_up(State(st): State<Shared>) -> Reply {
    let name = active_name(&st)?;
    stack_up(State(st), Path(name)).await
}

async fn active_down(State(st): State<Shared>, q: QueryResult<Force>) -> Reply {
    let name = active_name(&st)?;
    stack_down(State(st), Path(name), q).await
}

async fn stack_up(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    must_exist(&st, |s| s.stack_or_err(&name).map(drop))?;
    start(st, format!("stack up {name}"), move |s, on| {
        Ok(serde_json::to_value(s.stack_up(Some(&name), on)?).unwrap_or_default())
    })
}

async fn stack_down(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<Force>,
) -> Reply {
    let q = query(q)?;
    must_exist(&st, |s| s.stack_or_err(&name).map(drop))?;
    let label = format!("stack down {name}{}", if q.force { " --force" } else { "" });
    start(st, label, move |s, on| {
        Ok(serde_json::to_value(s.stack_down(Some(&name), q.force, on)?).unwrap_or_default())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveBody {
    name: String,
}

async fn active_get(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| {
        Ok(serde_json::json!({ "name": s.stack_get()? }))
    })
    .await
}

async fn active_set(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: ActiveBody = body(b)?;
    call(st, StatusCode::OK, true, move |s| s.stack_set(&b.name)).await
}

// ---- components ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentBody {
    name: String,
    flavor: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "present")]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    memory_mb: Option<u64>,
}

async fn component_list(State(st): State<Shared>, Path(t): Path<String>) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, false, move |s| s.component_list(t)).await
}

async fn component_register(State(st): State<Shared>, Path(t): Path<String>, b: JsonBody) -> Reply {
    let t = component_type(&t)?;
    let b: ComponentBody = body(b)?;
    let limits = limits("", b.timeout_ms, b.memory_mb)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.component_register(t, &b.name, &b.flavor, b.config, limits)
    })
    .await
}

#[derive(Deserialize)]
struct DescribeQuery {
    /// Ask the flavor for its live status (default true).
    #[serde(default)]
    status: Option<bool>,
}

async fn component_describe(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    q: QueryResult<DescribeQuery>,
) -> Reply {
    let t = component_type(&t)?;
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.component_describe(t, &name, q.status.unwrap_or(true))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentPatch {
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "present")]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    memory_mb: Option<u64>,
}

async fn component_update(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: JsonBody,
) -> Reply {
    let t = component_type(&t)?;
    let b: ComponentPatch = body(b)?;
    let limits = limits("", b.timeout_ms, b.memory_mb)?;
    call(st, StatusCode::OK, true, move |s| {
        s.component_update(t, &name, b.config, limits)
    })
    .await
}

async fn component_delete(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.component_delete(t, &name)
    })
    .await
}

async fn component_up(State(st): State<Shared>, Path((t, name)): Path<(String, String)>) -> Reply {
    let t = component_type(&t)?;
    must_exist(&st, |s| s.component_or_err(t, &name).map(drop))?;
    start(st, format!("{t} up {name}"), move |s, on| {
        s.component_up(t, &name, on)?;
        Ok(serde_json::to_value(s.component_describe(t, &name, false)?).unwrap_or_default())
    })
}

async fn component_down(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    q: QueryResult<Force>,
) -> Reply {
    let t = component_type(&t)?;
    let q = query(q)?;
    must_exist(&st, |s| s.component_or_err(t, &name).map(drop))?;
    let label = format!("{t} down {name}{}", if q.force { " --force" } else { "" });
    start(st, label, move |s, on| {
        s.component_down(t, &name, q.force, on)?;
        Ok(serde_json::to_value(s.component_describe(t, &name, false)?).unwrap_or_default())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    message: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// `strata alerter post NAME MESSAGE`: only an alerter posts.
async fn alerter_post(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: JsonBody,
) -> Reply {
    let t = component_type(&t)?;
    if t != ComponentType::Alerter {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("a {} does not post messages", t.label()),
            "post through an alerter: POST /api/v1/components/alerter/{name}/post",
        ));
    }
    let b: PostBody = body(b)?;
    call(st, StatusCode::OK, false, move |s| {
        s.alerter_post(&name, &b.message, b.params)
    })
    .await
}

// ---- files in artifact stores ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    /// The file's path inside the store (`models/v1/model.pkl`): its key.
    key: String,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirQuery {
    /// A directory inside the store; the root if absent.
    #[serde(default)]
    key: String,
}

async fn artifact_put(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<FileQuery>,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Reply {
    let q = query(q)?;
    let bytes = bytes.map_err(|e| {
        ApiError::new(
            e.status(),
            "too_large",
            e.body_text(),
            "a file sent here is at most 1024 MiB",
        )
    })?;
    call(st, StatusCode::CREATED, false, move |s| {
        s.artifact_put(&name, &q.key, &bytes, q.overwrite)
    })
    .await
}

async fn artifact_get(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<FileQuery>,
) -> Reply {
    let q = query(q)?;
    call_bytes(st, move |s| s.artifact_get(&name, &q.key)).await
}

async fn artifact_remove(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<FileQuery>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::NO_CONTENT, false, move |s| {
        s.artifact_remove(&name, &q.key, q.recursive)
    })
    .await
}

async fn artifact_list(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<DirQuery>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.artifact_list(&name, &q.key)
    })
    .await
}

async fn artifact_stat(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<FileQuery>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.artifact_stat(&name, &q.key)
    })
    .await
}

// ---- flavors ----

async fn flavor_list_all(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.flavor_list(None)).await
}

async fn flavor_list(State(st): State<Shared>, Path(t): Path<String>) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, false, move |s| s.flavor_list(Some(t))).await
}

async fn flavor_describe(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, false, move |s| {
        Ok(s.flavor_describe(t, &name)?.record)
    })
    .await
}

#[derive(Deserialize)]
struct UploadQuery {
    /// What to call the upload in the flavor's source (`upload:NAME`).
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    replace: bool,
    /// The extra origins the user accepts, comma-separated.
    #[serde(default)]
    allow_origins: Option<String>,
}

impl UploadQuery {
    fn options(&self) -> FlavorOptions {
        FlavorOptions {
            timeout_ms: self.timeout_ms,
            memory_mb: self.memory_mb,
            replace: self.replace,
            allow_origins: self
                .allow_origins
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// `POST /api/v1/flavors/{type}`: the body is the `.wasm` itself.
async fn flavor_upload(
    State(st): State<Shared>,
    Path(t): Path<String>,
    q: QueryResult<UploadQuery>,
    headers: axum::http::HeaderMap,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Reply {
    let t = component_type(&t)?;
    let q = query(q)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        // `{"path": "/abs/flavor.wasm"}`: a file on the daemon's machine, registered from
        // there with its path as the source (what the CLI sends).
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FromPath {
            path: std::path::PathBuf,
        }
        let bytes = bytes.map_err(|e| {
            ApiError::new(
                e.status(),
                "bad_request",
                e.body_text(),
                "send the JSON whole",
            )
        })?;
        let b: FromPath = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not this route's JSON: {e}"),
                "send `{\"path\": \"/abs/flavor.wasm\"}`, or the .wasm itself as `application/wasm`",
            )
        })?;
        if !b.path.is_absolute() || q.filename.is_some() {
            return Err(ApiError::invalid_field(
                "path",
                format!(
                    "is `{}`: it must be absolute, and comes without `filename`",
                    b.path.display()
                ),
                "give the .wasm's absolute path on the daemon's machine",
            ));
        }
        limits("", q.timeout_ms, q.memory_mb)?;
        let opts = q.options();
        return call(st, StatusCode::CREATED, true, move |s| {
            Ok(s.flavor_register(Some(t), &b.path, opts)
                .map_err(on_given_path)?
                .record)
        })
        .await;
    }
    let bytes = bytes.map_err(|e| {
        ApiError::new(
            e.status(),
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            },
            e.body_text(),
            &format!(
                "a flavor's .wasm may be at most {} MiB",
                MAX_UPLOAD / (1024 * 1024)
            ),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body is empty: it should be the flavor's .wasm".into(),
            "send the file as the body, e.g. `curl --data-binary @flavor.wasm -H 'Content-Type: application/wasm' …`",
        ));
    }
    limits("", q.timeout_ms, q.memory_mb)?;
    let opts = q.options();
    let name = q.filename.unwrap_or_else(|| "flavor.wasm".into());
    call(st, StatusCode::CREATED, true, move |s| {
        Ok(s.flavor_upload(Some(t), &name, &bytes, opts)?.record)
    })
    .await
}

async fn flavor_delete(State(st): State<Shared>, Path((t, name)): Path<(String, String)>) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.flavor_delete(t, &name)
    })
    .await
}

// ---- secrets ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    name: String,
    values: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretPatch {
    values: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Reveal {
    #[serde(default)]
    reveal: bool,
}

async fn secret_list(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.secret_list()).await
}

async fn secret_create(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: SecretBody = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.secret_create(&b.name, b.values)?;
        s.secret_get(&b.name, false)
    })
    .await
}

async fn secret_get(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<Reveal>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.secret_get(&name, q.reveal)
    })
    .await
}

async fn secret_update(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: SecretPatch = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.secret_update(&name, b.values)?;
        s.secret_get(&name, false)
    })
    .await
}

async fn secret_delete(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.secret_delete(&name)
    })
    .await
}

async fn integration_list(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.integration_list()).await
}

// ---- renames, copies, removals ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewName {
    new_name: String,
}

async fn stack_rename(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: NewName = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.stack_rename(&name, &b.new_name)
    })
    .await
}

async fn stack_copy(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: NewName = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.stack_copy(&name, &b.new_name)
    })
    .await
}

/// Takes the components of one type out of a stack.
async fn stack_remove_component(
    State(st): State<Shared>,
    Path((name, t)): Path<(String, String)>,
) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, true, move |s| {
        s.stack_remove_component(&name, BTreeMap::from([(t, Vec::new())]))
    })
    .await
}

/// Takes one named component out of a stack (a step operator among several, say).
async fn stack_remove_one(
    State(st): State<Shared>,
    Path((name, t, component)): Path<(String, String, String)>,
) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, true, move |s| {
        s.stack_remove_component(&name, BTreeMap::from([(t, vec![component])]))
    })
    .await
}

async fn component_rename(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: JsonBody,
) -> Reply {
    let t = component_type(&t)?;
    let b: NewName = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.component_rename(t, &name, &b.new_name)
    })
    .await
}

async fn component_copy(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: JsonBody,
) -> Reply {
    let t = component_type(&t)?;
    let b: NewName = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.component_copy(t, &name, &b.new_name)
    })
    .await
}

async fn component_remove_attribute(
    State(st): State<Shared>,
    Path((t, name, key)): Path<(String, String, String)>,
) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, true, move |s| {
        s.component_remove_attribute(t, &name, &key)
    })
    .await
}

async fn secret_rename(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: NewName = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        let rewritten = s.secret_rename(&name, &b.new_name)?;
        Ok(serde_json::json!({ "name": b.new_name, "rewritten": rewritten }))
    })
    .await
}

// ---- service connectors ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorBody {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    values: BTreeMap<String, String>,
}

async fn connector_list(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.connector_list()).await
}

async fn connector_register(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: ConnectorBody = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.connector_register(&b.name, &b.kind, b.values)
    })
    .await
}

async fn connector_describe(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| {
        s.connector_describe(&name)
    })
    .await
}

async fn connector_update(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: JsonBody,
) -> Reply {
    let b: SecretPatch = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.connector_update(&name, b.values)
    })
    .await
}

async fn connector_delete(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.connector_delete(&name)
    })
    .await
}

async fn connector_rename(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: JsonBody,
) -> Reply {
    let b: NewName = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.connector_rename(&name, &b.new_name)
    })
    .await
}

async fn connector_verify(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| {
        s.connector_verify(&name)
    })
    .await
}

// ---- integrations, pipelines, backups ----

#[derive(Deserialize)]
struct Replace {
    #[serde(default)]
    replace: bool,
}

/// Installs the integration NAME (a directory in STRATA_HOME/integrations or
/// STRATA_INTEGRATIONS, as the daemon sees them).
async fn integration_install(
    State(st): State<Shared>,
    Path(name): Path<String>,
    q: QueryResult<Replace>,
) -> Reply {
    let q = query(q)?;
    if name.contains('/') || name.starts_with('.') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("`{name}` is not an integration name"),
            "give the name `GET /api/v1/integrations` lists",
        ));
    }
    call(st, StatusCode::OK, true, move |s| {
        s.integration_install(&name, q.replace)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntegrationDir {
    /// The absolute path of a directory of `.wasm` flavors on the daemon's machine.
    path: std::path::PathBuf,
    #[serde(default)]
    replace: bool,
}

/// `POST /api/v1/integrations`: installs the flavors of a directory (`strata
/// integration install DIR`).
async fn integration_install_dir(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: IntegrationDir = body(b)?;
    if !b.path.is_absolute() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("`{}` is not an absolute path", b.path.display()),
            "give the directory's absolute path on the daemon's machine",
        ));
    }
    let path = b.path.to_string_lossy().into_owned();
    call(st, StatusCode::OK, true, move |s| {
        s.integration_install(&path, b.replace)
            .map_err(on_given_path)
    })
    .await
}

async fn integration_uninstall(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, true, move |s| {
        Ok(serde_json::json!({ "deleted": s.integration_uninstall(&name)? }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    pipeline: crate::service::Pipeline,
    /// Runtime configuration handed to every component.
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// The pipeline file's directory on the daemon's machine (absolute): where
    /// `{{pipeline.dir}}` points. The daemon's own directory when left out.
    #[serde(default)]
    dir: Option<std::path::PathBuf>,
    /// Steps of one wave run at once (default: the daemon machine's cores).
    #[serde(default)]
    jobs: Option<usize>,
    #[serde(default)]
    no_cache: bool,
    #[serde(default)]
    notify: bool,
    /// Answer when the run has ended (200, the default), or as soon as it is recorded
    /// (202, the run under way: follow it at `/api/v1/runs/{id}`).
    #[serde(default = "yes")]
    wait: bool,
}

fn yes() -> bool {
    true
}

async fn pipeline_run(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: RunBody = body(b)?;
    let dir = match b.dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("`{}` is not an absolute path", d.display()),
                "give the pipeline file's directory as an absolute path on the daemon's machine",
            ));
        }
        None => std::env::current_dir().unwrap_or_else(|_| "/".into()),
    };
    let mut opts = crate::service::RunOptions::new(dir.clone());
    if let Some(j) = b.jobs {
        if j == 0 || j > 256 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("`jobs` is {j}"),
                "give a number of steps to run at once from 1 to 256",
            ));
        }
        opts.jobs = j;
    }
    opts.no_cache = b.no_cache;
    opts.notify = b.notify;
    if b.wait {
        return call(st, StatusCode::OK, false, move |s| {
            s.pipeline_run_with(&b.pipeline, b.params, &opts, &|_| {})
        })
        .await;
    }
    // Run it on a thread of its own, which outlives this request; answer once it is
    // recorded (or refused before that).
    let (tx, rx) = tokio::sync::oneshot::channel::<crate::error::Result<String>>();
    let tx = Mutex::new(Some(tx));
    let runner = st.clone();
    // Counted among the work a stopping daemon waits for until it ends, even by a panic.
    let busy = Busy::new(st.clone());
    let who = caller().who;
    std::thread::spawn(move || {
        let _busy = busy;
        let svc = runner.svc.as_user(dir, who);
        let send = |r: crate::error::Result<String>| {
            if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(r);
            }
        };
        let watch = |e: crate::service::RunEvent<'_>| {
            if let crate::service::RunEvent::Started { run_id } = e {
                send(Ok(run_id.to_string()));
            }
        };
        let result = svc.pipeline_run_with(&b.pipeline, b.params, &opts, &watch);
        if let Err(e) = result {
            send(Err(e));
        }
    });
    let id = match rx.await {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => return Err(ApiError::from(e)),
        Err(_) => {
            return Err(ApiError::from(crate::error::Error::Internal(
                "the run ended before it was recorded".into(),
            )));
        }
    };
    call(st, StatusCode::ACCEPTED, false, move |s| s.run_get(&id)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    #[serde(default)]
    pipeline: Option<String>,
}

async fn run_list(State(st): State<Shared>, q: QueryResult<RunsQuery>) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.run_list(q.pipeline.as_deref())
    })
    .await
}

async fn run_get(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| s.run_get(&id)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunLogsQuery {
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    from: u64,
}

async fn run_logs(
    State(st): State<Shared>,
    Path(id): Path<String>,
    q: QueryResult<RunLogsQuery>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.run_logs(&id, q.step.as_deref(), q.from)
    })
    .await
}

async fn run_cancel(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    call(st, StatusCode::ACCEPTED, false, move |s| {
        s.run_cancel(&id, "cancelled through the API (`strata pipeline cancel`)")
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunDeleteQuery {
    #[serde(default)]
    keep_artifacts: bool,
}

async fn run_delete(
    State(st): State<Shared>,
    Path(id): Path<String>,
    q: QueryResult<RunDeleteQuery>,
) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.run_delete(&id, q.keep_artifacts)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    /// An absolute path on the daemon's machine.
    file: std::path::PathBuf,
    #[serde(default)]
    force: bool,
}

fn absolute(b: &FileBody) -> Result<(), ApiError> {
    if b.file.is_absolute() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        format!("`{}` is not an absolute path", b.file.display()),
        "give the file's absolute path on the daemon's machine",
    ))
}

async fn backup(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: FileBody = body(b)?;
    absolute(&b)?;
    // Under the catalog lock: a backup reads the records and the flavor files as one
    // moment, which no change may come between.
    call(st, StatusCode::CREATED, true, move |s| {
        s.backup(&b.file, b.force).map_err(on_given_path)
    })
    .await
}

async fn restore(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: FileBody = body(b)?;
    absolute(&b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.restore(&b.file, b.force).map_err(on_given_path)
    })
    .await
}

// ---- operations ----

/// The operations of this daemon and of the ones before it on this home, kept in
/// `STRATA_HOME/operations.json` so that a restarted daemon still answers for them; the
/// oldest finished ones are forgotten past [`Operations::KEEP`].
#[derive(Default)]
pub struct Operations {
    all: Mutex<(BTreeMap<String, Operation>, VecDeque<String>)>,
    /// The journal file, when there is one.
    file: Option<std::path::PathBuf>,
    /// One writer of the journal at a time, each writing the newest view.
    saving: Mutex<()>,
    /// Counts changes, so that an event stream wakes at once when its operation moves.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Operations {
    const KEEP: usize = 200;

    /// The operations recorded in `file`; one still `running` there belonged to a daemon
    /// that ended before it did, and is marked interrupted.
    pub fn load(file: std::path::PathBuf) -> Operations {
        let past: Vec<Operation> = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let ops = Operations {
            file: Some(file),
            ..Default::default()
        };
        for mut op in past {
            if op.state == OpState::Running {
                op.state = OpState::Interrupted;
                op.error.get_or_insert(ErrorBody {
                    code: "interrupted".into(),
                    message: "the daemon ended before this operation finished".into(),
                    hint: "the components' phases show where each one is; run the operation again to resume it".into(),
                });
            }
            ops.insert(op);
        }
        ops
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Operation>) -> R) -> R {
        let mut g = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g.0)
    }

    /// [`Self::with`] for a change: every event stream is woken after it.
    fn change<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Operation>) -> R) -> R {
        let r = self.with(f);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        r
    }

    fn insert(&self, op: Operation) {
        let mut g = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.push_back(op.id.clone());
        g.0.insert(op.id.clone(), op);
        while g.1.len() > Self::KEEP {
            let oldest = g.1.pop_front().expect("invariant: not empty");
            if g.0
                .get(&oldest)
                .is_some_and(|o| o.state == OpState::Running)
            {
                g.1.push_back(oldest);
                break;
            }
            g.0.remove(&oldest);
        }
    }

    /// Writes the journal (best effort: a daemon that cannot write it still serves).
    /// It survives the daemon ending at any moment (killed, crashed); not a power cut.
    fn save(&self) {
        let Some(file) = &self.file else { return };
        let _one = self
            .saving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all: Vec<Operation> = {
            let g = self
                .all
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.1.iter().filter_map(|id| g.0.get(id).cloned()).collect()
        };
        let bytes = serde_json::to_vec(&all).expect("invariant: operations serialize");
        // Whole, but not fsynced: it is written twice per `up` or `down`, on their path,
        // and after a power cut the components' phases (in the store, which is durable)
        // still say where each one is.
        use strata_model::fsutil::{Durability, write_atomic_for};
        if let Err(e) = write_atomic_for(file, &bytes, 0o600, Durability::Process) {
            super::server::log(&format!("could not record operations: {e}"));
        }
    }

    pub fn get(&self, id: &str) -> Option<Operation> {
        self.with(|m| m.get(id).cloned())
    }

    /// Every operation, oldest first.
    pub fn list(&self) -> Vec<Operation> {
        let g = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.iter().filter_map(|id| g.0.get(id).cloned()).collect()
    }

    /// Marks what still runs as interrupted (the daemon is stopping) and records it.
    pub fn interrupt_running(&self) {
        self.change(|m| {
            for op in m.values_mut().filter(|o| o.state == OpState::Running) {
                op.state = OpState::Interrupted;
                op.error.get_or_insert(ErrorBody {
                    code: "interrupted".into(),
                    message: "the daemon stopped before this operation finished".into(),
                    hint: "the components' phases show where each one is; run the operation again to resume it".into(),
                });
            }
        });
        self.save();
    }
}

/// Starts a lifecycle run on the blocking pool and answers `202` with its operation.
fn start(
    st: Shared,
    action: String,
    f: impl FnOnce(&Service, &mut dyn FnMut(Progress)) -> crate::error::Result<serde_json::Value>
    + Send
    + 'static,
) -> Reply {
    let id = crate::service::new_id();
    let op = Operation {
        id: id.clone(),
        user: caller().who.map(|p| p.user),
        action,
        state: OpState::Running,
        progress: Vec::new(),
        result: None,
        error: None,
        warnings: Vec::new(),
        logs: Vec::new(),
        started_at: now_ms(),
        finished_at: None,
    };
    // Recorded in memory now, in the journal by the worker (off the request's path: the
    // journal is fsynced).
    st.ops.insert(op.clone());
    let st2 = st.clone();
    let worker = st.clone();
    let busy = Busy::new(st);
    let Caller {
        cli_words: cli,
        cwd,
        who,
        ..
    } = caller();
    tokio::task::spawn_blocking(move || {
        let _busy = busy;
        let svc = worker.svc.as_user(cwd, who);
        let ops = &worker.ops;
        ops.save();
        let outcome = f(&svc, &mut |p| {
            ops.change(|m| {
                if let Some(o) = m.get_mut(&id) {
                    o.progress.push(p)
                }
            })
        });
        let (warnings, logs) = (svc.take_warnings(), svc.take_logs());
        ops.change(|m| {
            if let Some(o) = m.get_mut(&id) {
                o.finished_at = Some(now_ms());
                o.warnings = warnings;
                o.logs = logs;
                match outcome {
                    Ok(v) => {
                        o.state = OpState::Succeeded;
                        o.result = Some(v);
                    }
                    Err(e) => {
                        // A run the daemon's stop cut short was not tried to the end.
                        let cut = matches!(e, Error::Busy { .. }) && svc.is_stopping();
                        o.state = if cut {
                            OpState::Interrupted
                        } else {
                            OpState::Failed
                        };
                        o.error = Some(ApiError::worded(e, cli).body);
                    }
                }
            }
        });
        ops.save();
    });
    let location = format!("/api/v1/operations/{}", op.id);
    if caller().events {
        let mut r = events(st2, op.id);
        *r.status_mut() = StatusCode::ACCEPTED;
        let location = axum::http::HeaderValue::from_str(&location)
            .expect("invariant: an id is a valid header");
        r.headers_mut().insert(header::LOCATION, location);
        return Ok(r);
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(op),
    )
        .into_response())
}

/// Counts a lifecycle run in [`super::server::Daemon::busy`] while it lives, even if it
/// panics, so that shutdown does not wait out its grace period for a run that is gone.
struct Busy(Shared);

impl Busy {
    fn new(st: Shared) -> Busy {
        st.busy.fetch_add(1, Ordering::SeqCst);
        Busy(st)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the caller sees operation `op`: on a team server, its own (admins: all).
fn sees(op: &Operation) -> bool {
    match caller().who {
        None => true,
        Some(p) => {
            p.role == crate::service::Role::Admin || op.user.as_deref() == Some(p.user.as_str())
        }
    }
}

async fn operation_list(State(st): State<Shared>) -> Response {
    let mine: Vec<Operation> = st.ops.list().into_iter().filter(sees).collect();
    axum::Json(mine).into_response()
}

async fn operation_get(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    st.ops
        .get(&id)
        .filter(sees)
        .map(|o| axum::Json(o).into_response())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("operation `{id}` does not exist"),
                "the newest 200 operations are kept, across daemon restarts; list them at /api/v1/operations",
            )
        })
}

/// `GET /api/v1/operations/{id}/events`: the operation as server-sent events, as it
/// happens ([`events`]). `up` and `down` answer the same stream at once to a request
/// with `Accept: text/event-stream`, which is how the CLI follows them: every step shows
/// the moment it is taken.
async fn operation_events(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    if st.ops.get(&id).filter(sees).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("operation `{id}` does not exist"),
            "the newest 200 operations are kept, across daemon restarts; list them at /api/v1/operations",
        ));
    }
    Ok(events(st, id))
}

/// The event stream of operation `id` (it exists): `start` (the operation as it stands),
/// then one `progress` per step as it is taken, then `end` (the whole operation) once it
/// is no longer running. Woken by every change of an operation, not by a timer.
fn events(st: Shared, id: String) -> Response {
    let changes = st.ops.changes.subscribe();
    let start = Some((st, id, 0usize, changes));
    let events = futures_util::stream::unfold(start, |state| async move {
        let (st, id, sent, mut changes) = state?;
        loop {
            changes.borrow_and_update();
            if sent == 0 {
                // First the operation as it stands, so that a client that started it by
                // asking for its events (one request) knows its id and what it does.
                let op = st.ops.get(&id)?;
                let data = serde_json::to_string(&op).expect("invariant: an operation serializes");
                return Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(format!(
                        "event: start\ndata: {data}\n\n"
                    ))),
                    Some((st, id, 1, changes)),
                ));
            }
            // Gone (forgotten past the newest 200): the stream ends without an `end`.
            let op = st.ops.get(&id)?;
            if let Some(p) = op.progress.get(sent - 1) {
                let data = serde_json::to_string(p).expect("invariant: progress serializes");
                let event = format!("event: progress\ndata: {data}\n\n");
                return Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(event)),
                    Some((st, id, sent + 1, changes)),
                ));
            }
            if op.state != OpState::Running {
                let data = serde_json::to_string(&op).expect("invariant: an operation serializes");
                return Some((
                    Ok(Bytes::from(format!("event: end\ndata: {data}\n\n"))),
                    None,
                ));
            }
            // Woken by the next change; a second at most, as a safety net.
            let next = changes.changed();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), next).await;
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(axum::body::Body::from_stream(events))
        .expect("invariant: a valid response")
}

#[cfg(test)]
mod tests {
    /// The `METHOD path` pairs of the API the router serves, read from the sources.
    fn served() -> std::collections::BTreeSet<String> {
        let mut served = std::collections::BTreeSet::new();
        let sources = [
            include_str!("routes.rs"),
            include_str!("access.rs"),
            include_str!("dashboard.rs"),
        ];
        for src in sources {
            let routes = &src[..src.find("#[cfg(test)]").expect("this module")];
            for part in routes.split(".route(").skip(1) {
                let start = part.find('"').expect("a path follows .route(") + 1;
                let end = start + part[start..].find('"').expect("the path ends");
                let path = &part[start..end];
                // The dashboard's pages are not the API.
                if !path.starts_with("/api/") && path != "/health" {
                    continue;
                }
                // The handlers up to the next route (or the fallback), e.g. `get(a).post(b)`.
                // The function that builds the router ends at the first `}` in column 0.
                let handlers = part[end..].split(".fallback(").next().unwrap_or("");
                let handlers = handlers.split("\n}").next().unwrap_or("");
                for method in ["get", "post", "put", "patch", "delete"] {
                    let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                        i == 0
                            || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if called {
                        served.insert(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
        served
    }

    #[test]
    fn openapi_describes_every_route_and_method_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        let mut documented = std::collections::BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        let served = served();
        assert!(served.len() > 40, "routes found: {served:?}");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "not in openapi.json: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in openapi.json but not served: {unserved:?}"
        );
    }

    #[test]
    fn every_operation_documents_the_errors_every_request_can_get() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                let codes = op["responses"].as_object().expect("responses");
                assert!(codes.keys().any(|c| c.starts_with('2')), "{method} {path}");
                // Every request goes through the connection's limits and the guard,
                // which reads its body (cut off: 400; too large: 413; too slow: 408),
                // and hyper answers what is not HTTP/1.1 (400, 431).
                for code in ["400", "403", "408", "413", "431", "503"] {
                    assert!(codes.contains_key(code), "{method} {path} lacks {code}");
                }
                if path != "/health" {
                    for code in ["401", "500"] {
                        assert!(codes.contains_key(code), "{method} {path} lacks {code}");
                    }
                }
            }
        }
    }

    /// Every schema in the document, with where it is, walked depth first.
    fn walk<'a>(
        at: String,
        v: &'a serde_json::Value,
        out: &mut Vec<(String, &'a serde_json::Value)>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                out.push((at.clone(), v));
                for (k, child) in m {
                    walk(format!("{at}/{k}"), child, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(format!("{at}/{i}"), child, out);
                }
            }
            _ => {}
        }
    }

    fn schema<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        &doc["components"]["schemas"][name]
    }

    #[test]
    fn openapi_states_every_bound_the_server_enforces() {
        use crate::model::{ComponentType, valid_flavor_name, valid_object_name};
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        // Integers: the ranges the API checks (the end-to-end tests hold them to the
        // service's).
        let bounds = |name: &str| {
            let s = schema(&doc, name);
            (
                s["minimum"].as_u64().unwrap(),
                s["maximum"].as_u64().unwrap(),
            )
        };
        let (t, m) = (super::TIMEOUT_MS, super::MEMORY_MB);
        assert_eq!(bounds("TimeoutMs"), (*t.start(), *t.end()));
        assert_eq!(bounds("MemoryMb"), (*m.start(), *m.end()));
        // Names: the model's rule at its edges.
        let name = schema(&doc, "Name");
        assert_eq!(name["maxLength"], 128);
        assert_eq!(name["pattern"], "^[A-Za-z0-9_-][A-Za-z0-9._-]*$");
        assert!(valid_object_name(&"a".repeat(128)) && !valid_object_name(&"a".repeat(129)));
        assert!(
            valid_object_name("A-b_c.d") && !valid_object_name(".a") && !valid_object_name("a b")
        );
        let flavor = schema(&doc, "FlavorName");
        assert_eq!(flavor["maxLength"], 64);
        assert_eq!(flavor["pattern"], "^[a-z][a-z0-9_-]*$");
        assert!(valid_flavor_name(&"a".repeat(64)) && !valid_flavor_name(&"a".repeat(65)));
        assert!(valid_flavor_name("a-b_1") && !valid_flavor_name("A") && !valid_flavor_name("1a"));
        // Keys: the pattern excludes exactly the characters the model refuses.
        let key = schema(&doc, "Key")["pattern"].as_str().unwrap();
        let class: Vec<char> = key
            .strip_prefix("^[^")
            .and_then(|k| k.strip_suffix("]+$"))
            .expect("^[^…]+$")
            .chars()
            .collect();
        let mut excluded = Vec::new();
        let mut i = 0;
        let one = |i: &mut usize| -> char {
            if class[*i] == '\\' && class[*i + 1] == 'u' {
                let hex: String = class[*i + 2..*i + 6].iter().collect();
                *i += 6;
                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
            } else {
                *i += 1;
                class[*i - 1]
            }
        };
        while i < class.len() {
            let lo = one(&mut i);
            let hi = if class.get(i) == Some(&'-') {
                i += 1;
                one(&mut i)
            } else {
                lo
            };
            excluded.push(lo..=hi);
        }
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                excluded.iter().any(|r| r.contains(&c)),
                crate::model::text::needs_escape(c),
                "U+{:04X}",
                c as u32
            );
        }
        // Component types.
        let types: std::collections::BTreeSet<&str> = schema(&doc, "ComponentType")["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(types, ComponentType::ALL.map(|t| t.as_str()).into());
        // Every field and parameter of these names is stated the one way.
        let mut all = Vec::new();
        walk(String::new(), &doc, &mut all);
        let is_ref = |v: &serde_json::Value, to: &str| {
            let target = format!("#/components/schemas/{to}");
            [&v["$ref"], &v["allOf"][0]["$ref"], &v["anyOf"][0]["$ref"]]
                .iter()
                .any(|r| **r == target.as_str())
        };
        let mut seen = 0;
        for (at, v) in &all {
            let (field, spec) = if let Some(n) = v["name"].as_str().filter(|_| v["in"].is_string())
            {
                (n, &v["schema"])
            } else if at.contains("/properties/") {
                (at.rsplit('/').next().unwrap(), *v)
            } else {
                continue;
            };
            let want = match field {
                "timeout_ms" => "TimeoutMs",
                "memory_mb" => "MemoryMb",
                "new_name" | "component" | "stack" => "Name",
                "file" | "cwd" => "AbsolutePath",
                "path" => "AbsolutePath",
                "values" | "params" | "parameters" | "config" => "Strings",
                _ => continue,
            };
            // Requests only: what the daemon answers is described as it is.
            let request_schema = [
                "StackRegister",
                "ComponentRegister",
                "CliRequest",
                "StackExport",
                "Pipeline",
            ]
            .iter()
            .any(|n| at.starts_with(&format!("/components/schemas/{n}/")));
            if at.contains("/responses/") || at.starts_with("/components/") && !request_schema {
                continue;
            }
            seen += 1;
            assert!(
                is_ref(spec, want),
                "{at}: `{field}` should be a {want}: {spec}"
            );
        }
        assert!(seen > 20, "checked {seen}");
        // Every request body names its required fields (or how many of its optional
        // ones it needs) and takes no others, as the server's `deny_unknown_fields`
        // does (a pipeline's steps may carry more).
        for (at, v) in &all {
            if at.contains("/requestBody/") && at.ends_with("/content/application/json/schema") {
                let body = v["$ref"]
                    .as_str()
                    .map_or(*v, |r| schema(&doc, r.rsplit('/').next().unwrap()));
                assert_eq!(body["additionalProperties"], false, "{at}");
                assert!(
                    body["required"].is_array()
                        || body["minProperties"].is_number()
                        || body["properties"]["config"].is_object(),
                    "{at}"
                );
            }
        }
    }

    #[test]
    fn bodies_take_whole_numbers_written_with_a_fraction_and_refuse_null() {
        let read = |v: serde_json::Value| {
            super::body::<super::ComponentPatch>(Ok(axum::Json(v))).map(|b| b.timeout_ms)
        };
        assert_eq!(
            read(serde_json::json!({"timeout_ms": 10})).unwrap(),
            Some(10)
        );
        assert_eq!(
            read(serde_json::json!({"timeout_ms": 10.0})).unwrap(),
            Some(10)
        );
        assert_eq!(read(serde_json::json!({})).unwrap(), None);
        for bad in [
            serde_json::json!({"timeout_ms": null}),
            serde_json::json!({"timeout_ms": 10.5}),
            serde_json::json!({"timeout_ms": -1}),
            serde_json::json!({"timeout_ms": "10"}),
            serde_json::json!({"timeout": 10}),
        ] {
            let e = read(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn errors_map_to_statuses_by_cause() {
        use crate::error::Error;
        use axum::http::StatusCode;
        let status = |e: Error| super::ApiError::from(e).status;
        assert_eq!(status(Error::not_found("x", "")), StatusCode::NOT_FOUND);
        assert_eq!(status(Error::exists("x", "")), StatusCode::CONFLICT);
        assert_eq!(
            status(Error::invalid("x", "")),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(Error::Internal("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
