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
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::server::Shared;
use crate::error::{Error, ErrorKind};
use crate::model::{ComponentType, LimitOverrides, now_ms};
use crate::service::{FlavorOptions, Progress, Service, StackExport};

/// The OpenAPI 3.1 description of this API, kept in the repository next to this file.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The largest `.wasm` the upload route accepts.
const MAX_UPLOAD: usize = 256 * 1024 * 1024;

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
        .route("/api/v1/stacks/{name}/up", post(stack_up))
        .route("/api/v1/stacks/{name}/down", post(stack_down))
        .route("/api/v1/active-stack", get(active_get).put(active_set))
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
        .route("/api/v1/integrations", get(integration_list))
        .route(
            "/api/v1/integrations/{name}",
            axum::routing::put(integration_install).delete(integration_uninstall),
        )
        .route("/api/v1/pipelines/run", post(pipeline_run))
        .route("/api/v1/backup", post(backup))
        .route("/api/v1/restore", post(restore))
        .route("/api/v1/operations", get(operation_list))
        .route("/api/v1/operations/{id}", get(operation_get))
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
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
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            e.body_text(),
            "send a JSON body as /api/v1/openapi.json describes, with `Content-Type: application/json`",
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
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
        };
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: e.to_string(),
                hint: e.hint(),
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

type Reply = Result<Response, ApiError>;

/// Runs `f` on the blocking pool; with `lock`, under the catalog lock. A REST request
/// has no working directory: a relative path in it is refused, not resolved against
/// wherever the daemon runs.
async fn call<T: Serialize + Send + 'static>(
    st: Shared,
    status: StatusCode,
    lock: bool,
    f: impl FnOnce(&Service) -> crate::error::Result<T> + Send + 'static,
) -> Reply {
    let out = tokio::task::spawn_blocking(move || {
        let svc = st
            .svc
            .scoped(std::env::current_dir().unwrap_or_else(|_| "/".into()));
        let _catalog = lock.then(|| svc.catalog_lock());
        f(&svc)
    })
    .await
    .map_err(|e| ApiError::from(Error::Internal(format!("a request handler failed: {e}"))))??;
    Ok((status, axum::Json(out)).into_response())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn body<T>(b: Result<axum::Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|axum::Json(v)| v).map_err(ApiError::bad_body)
}

fn component_type(s: &str) -> Result<ComponentType, ApiError> {
    ComponentType::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("`{s}` is not a component type"),
                &format!(
                    "use one of: {}",
                    ComponentType::ALL.map(|t| t.as_str()).join(", ")
                ),
            )
        })
}

async fn daemon_info(State(st): State<Shared>) -> Response {
    axum::Json(st.info()).into_response()
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

async fn stack_register(
    State(st): State<Shared>,
    b: Result<axum::Json<StackBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
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
    components: BTreeMap<String, OneOrMany>,
}

async fn stack_update(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: Result<axum::Json<StackPatch>, JsonRejection>,
) -> Reply {
    let components = members(body(b)?.components)?;
    call(st, StatusCode::OK, true, move |s| {
        s.stack_update(&name, components)
    })
    .await
}

async fn stack_delete(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, true, move |s| s.stack_delete(&name))
        .await
        .map(|_| no_content())
}

async fn stack_export(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, false, move |s| s.stack_export(&name)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    export: StackExport,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn stack_import(
    State(st): State<Shared>,
    b: Result<axum::Json<ImportBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
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

async fn stack_up(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    start(st, format!("stack up {name}"), move |s, on| {
        Ok(serde_json::to_value(s.stack_up(Some(&name), on)?).unwrap_or_default())
    })
}

async fn stack_down(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<Force>,
) -> Reply {
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

async fn active_set(
    State(st): State<Shared>,
    b: Result<axum::Json<ActiveBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
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
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
}

async fn component_list(State(st): State<Shared>, Path(t): Path<String>) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, false, move |s| s.component_list(t)).await
}

async fn component_register(
    State(st): State<Shared>,
    Path(t): Path<String>,
    b: Result<axum::Json<ComponentBody>, JsonRejection>,
) -> Reply {
    let t = component_type(&t)?;
    let b = body(b)?;
    let limits = LimitOverrides {
        timeout_ms: b.timeout_ms,
        memory_mb: b.memory_mb,
    };
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
    Query(q): Query<DescribeQuery>,
) -> Reply {
    let t = component_type(&t)?;
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
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
}

async fn component_update(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: Result<axum::Json<ComponentPatch>, JsonRejection>,
) -> Reply {
    let t = component_type(&t)?;
    let b = body(b)?;
    let limits = LimitOverrides {
        timeout_ms: b.timeout_ms,
        memory_mb: b.memory_mb,
    };
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
    call(st, StatusCode::OK, true, move |s| {
        s.component_delete(t, &name)
    })
    .await
    .map(|_| no_content())
}

async fn component_up(State(st): State<Shared>, Path((t, name)): Path<(String, String)>) -> Reply {
    let t = component_type(&t)?;
    start(st, format!("{t} up {name}"), move |s, on| {
        s.component_up(t, &name, on)?;
        Ok(serde_json::to_value(s.component_describe(t, &name, false)?).unwrap_or_default())
    })
}

async fn component_down(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    Query(q): Query<Force>,
) -> Reply {
    let t = component_type(&t)?;
    let label = format!("{t} down {name}{}", if q.force { " --force" } else { "" });
    start(st, label, move |s, on| {
        s.component_down(t, &name, q.force, on)?;
        Ok(serde_json::to_value(s.component_describe(t, &name, false)?).unwrap_or_default())
    })
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
}

/// `POST /api/v1/flavors/{type}`: the body is the `.wasm` itself.
async fn flavor_upload(
    State(st): State<Shared>,
    Path(t): Path<String>,
    Query(q): Query<UploadQuery>,
    bytes: Bytes,
) -> Reply {
    let t = component_type(&t)?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body is empty: it should be the flavor's .wasm".into(),
            "send the file as the body, e.g. `curl --data-binary @flavor.wasm -H 'Content-Type: application/wasm' …`",
        ));
    }
    let opts = FlavorOptions {
        timeout_ms: q.timeout_ms,
        memory_mb: q.memory_mb,
        replace: q.replace,
    };
    let name = q.filename.unwrap_or_else(|| "flavor.wasm".into());
    call(st, StatusCode::CREATED, true, move |s| {
        Ok(s.flavor_upload(Some(t), &name, &bytes, opts)?.record)
    })
    .await
}

async fn flavor_delete(State(st): State<Shared>, Path((t, name)): Path<(String, String)>) -> Reply {
    let t = component_type(&t)?;
    call(st, StatusCode::OK, true, move |s| s.flavor_delete(t, &name))
        .await
        .map(|_| no_content())
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

async fn secret_create(
    State(st): State<Shared>,
    b: Result<axum::Json<SecretBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.secret_create(&b.name, b.values)?;
        s.secret_get(&b.name, false)
    })
    .await
}

async fn secret_get(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<Reveal>,
) -> Reply {
    call(st, StatusCode::OK, false, move |s| {
        s.secret_get(&name, q.reveal)
    })
    .await
}

async fn secret_update(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: Result<axum::Json<SecretPatch>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.secret_update(&name, b.values)?;
        s.secret_get(&name, false)
    })
    .await
}

async fn secret_delete(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::OK, true, move |s| s.secret_delete(&name))
        .await
        .map(|_| no_content())
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

async fn stack_rename(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: Result<axum::Json<NewName>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.stack_rename(&name, &b.new_name)
    })
    .await
}

async fn stack_copy(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: Result<axum::Json<NewName>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
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
        let members = s
            .stack_describe(Some(&name))?
            .components
            .into_iter()
            .filter(|m| m.component_type == t)
            .map(|m| m.name)
            .collect();
        s.stack_remove_component(&name, BTreeMap::from([(t, members)]))
    })
    .await
}

async fn component_rename(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: Result<axum::Json<NewName>, JsonRejection>,
) -> Reply {
    let t = component_type(&t)?;
    let b = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.component_rename(t, &name, &b.new_name)
    })
    .await
}

async fn component_copy(
    State(st): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    b: Result<axum::Json<NewName>, JsonRejection>,
) -> Reply {
    let t = component_type(&t)?;
    let b = body(b)?;
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

async fn secret_rename(
    State(st): State<Shared>,
    Path(name): Path<String>,
    b: Result<axum::Json<NewName>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        let rewritten = s.secret_rename(&name, &b.new_name)?;
        Ok(serde_json::json!({ "name": b.new_name, "rewritten": rewritten }))
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
    Query(q): Query<Replace>,
) -> Reply {
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
}

async fn pipeline_run(
    State(st): State<Shared>,
    b: Result<axum::Json<RunBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    call(st, StatusCode::OK, false, move |s| {
        s.pipeline_run(&b.pipeline, b.params)
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

async fn backup(State(st): State<Shared>, b: Result<axum::Json<FileBody>, JsonRejection>) -> Reply {
    let b = body(b)?;
    absolute(&b)?;
    call(st, StatusCode::CREATED, false, move |s| {
        s.backup(&b.file, b.force)
    })
    .await
}

async fn restore(
    State(st): State<Shared>,
    b: Result<axum::Json<FileBody>, JsonRejection>,
) -> Reply {
    let b = body(b)?;
    absolute(&b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.restore(&b.file, b.force)
    })
    .await
}

// ---- operations ----

/// A lifecycle run started by a REST call, polled at `/api/v1/operations/{id}`.
#[derive(Clone, Debug, Serialize)]
pub struct Operation {
    pub id: String,
    /// What runs, e.g. `stack up prod`.
    pub action: String,
    /// `running`, `succeeded`, `failed`, or `interrupted` (the daemon stopped first).
    pub state: &'static str,
    /// Each component's steps, as they happen.
    pub progress: Vec<Progress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    pub started_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

/// The operations of this daemon's life; the oldest finished ones are forgotten past
/// [`Operations::KEEP`].
#[derive(Default)]
pub struct Operations {
    all: Mutex<(BTreeMap<String, Operation>, VecDeque<String>)>,
}

impl Operations {
    const KEEP: usize = 1000;

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Operation>) -> R) -> R {
        let mut g = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g.0)
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
            if g.0.get(&oldest).is_some_and(|o| o.state == "running") {
                g.1.push_back(oldest);
                break;
            }
            g.0.remove(&oldest);
        }
    }

    pub fn get(&self, id: &str) -> Option<Operation> {
        self.with(|m| m.get(id).cloned())
    }

    /// Marks what still runs as interrupted (the daemon is stopping).
    pub fn interrupt_running(&self) {
        self.with(|m| {
            for op in m.values_mut().filter(|o| o.state == "running") {
                op.state = "interrupted";
            }
        })
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
        action,
        state: "running",
        progress: Vec::new(),
        result: None,
        error: None,
        started_at: now_ms(),
        finished_at: None,
    };
    st.ops.insert(op.clone());
    st.busy.fetch_add(1, Ordering::SeqCst);
    let worker = st.clone();
    tokio::task::spawn_blocking(move || {
        let svc = worker.svc.scoped(std::path::PathBuf::new());
        let ops = &worker.ops;
        let outcome = f(&svc, &mut |p| {
            ops.with(|m| {
                if let Some(o) = m.get_mut(&id) {
                    o.progress.push(p)
                }
            })
        });
        ops.with(|m| {
            if let Some(o) = m.get_mut(&id) {
                o.finished_at = Some(now_ms());
                match outcome {
                    Ok(v) => {
                        o.state = "succeeded";
                        o.result = Some(v);
                    }
                    Err(e) => {
                        o.state = "failed";
                        o.error = Some(ApiError::from(e).body);
                    }
                }
            }
        });
        worker.busy.fetch_sub(1, Ordering::SeqCst);
    });
    let location = format!("/api/v1/operations/{}", op.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(op),
    )
        .into_response())
}

async fn operation_list(State(st): State<Shared>) -> Response {
    let all: Vec<Operation> = st.ops.with(|m| m.values().cloned().collect());
    axum::Json(all).into_response()
}

async fn operation_get(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    st.ops
        .get(&id)
        .map(|o| axum::Json(o).into_response())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("operation `{id}` does not exist"),
                "operations live as long as the daemon; list them at /api/v1/operations",
            )
        })
}

#[cfg(test)]
mod tests {
    /// The paths `routes()` serves, read from this file's source.
    fn served() -> Vec<String> {
        let src = include_str!("api.rs");
        let mut rest = &src[..src.find("#[cfg(test)]").expect("this module")];
        let mut paths = Vec::new();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let start = rest.find('"').expect("a path follows .route(") + 1;
            let end = start + rest[start..].find('"').expect("the path ends");
            paths.push(rest[start..end].to_string());
        }
        paths.push("/api/v1/cli".into());
        paths
    }

    #[test]
    fn openapi_describes_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        let documented: std::collections::BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        let served: std::collections::BTreeSet<String> = served().into_iter().collect();
        assert!(served.len() > 20, "routes found: {served:?}");
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
