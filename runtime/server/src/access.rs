//! A team server's side of access: which [`Need`] each route has (one table, checked
//! before any route runs; a route not in it needs `admin`), record versions for
//! `If-Match`, and the routes of users, tokens, grants, `whoami` and the audit log.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get};
use serde::Deserialize;
use sha2::Digest;

use super::routes::{JsonBody, QueryResult, Reply, body, call, query};
use super::server::Shared;
use crate::error::{Error, Result};
use crate::model::ComponentType;
use crate::service::{Need, Role, Service};

/// What a request needs: by its method and path (percent-decoded, as the routes read
/// them) and, for a secret, whether it asks for values.
pub fn need(method: &Method, path: &str, query: &str) -> Need {
    let seg: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| decode(s).unwrap_or_else(|| s.to_string()))
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let read = *method == Method::GET || *method == Method::HEAD;
    let member_unless_read = if read { Need::Read } else { Need::Member };
    let Some(rest) = seg.strip_prefix(&["api", "v1"]) else {
        return Need::Admin;
    };
    let ty = |t: &str| t.parse::<ComponentType>().ok();
    match rest {
        ["whoami"] | ["tokens"] | ["tokens", _] => Need::Read,
        ["users"] | ["users", _] | ["audit"] => Need::Admin,
        ["daemon"] | ["daemon", "logs"] if read => Need::Read,
        ["operations", ..] | ["runs"] | ["runs", _] | ["runs", _, "logs"] if read => Need::Read,
        // Runs are started by admins (their steps run on the server), and stopped or
        // deleted (with their artifacts) by admins.
        ["runs", _] | ["runs", _, "cancel"] => Need::Admin,
        ["stacks"] => member_unless_read,
        ["stacks", name] | ["stacks", name, "export"] if read => Need::StackRead(name.to_string()),
        ["stacks", name, "grants"] if read => Need::StackRead(name.to_string()),
        ["stacks", _, "grants", ..] => Need::Admin,
        ["stacks", "import"] => Need::Admin,
        ["stacks", name, "up" | "down"] => Need::StackLifecycle(name.to_string()),
        ["stacks", name, "copy"] => Need::StackCopy(name.to_string()),
        ["stacks", name] | ["stacks", name, ..] => Need::StackChange(name.to_string()),
        ["active-stack"] => Need::Read,
        ["active-stack", "up" | "down"] => Need::ActiveStackLifecycle,
        ["components", _] => member_unless_read,
        ["components", t, name, ..] if read => match ty(t) {
            Some(t) => Need::ComponentRead(t, name.to_string()),
            None => Need::Read,
        },
        ["components", _, _, "copy"] => Need::Member,
        ["components", t, name, ..] => match ty(t) {
            Some(t) => Need::Component(t, name.to_string()),
            None => Need::Member,
        },
        ["artifact-stores", name, ..] if read => {
            Need::ComponentRead(ComponentType::ArtifactStore, name.to_string())
        }
        ["artifact-stores", name, ..] => {
            Need::Component(ComponentType::ArtifactStore, name.to_string())
        }
        // New code for flavors components already use is checked in the service, against
        // each of those components.
        ["flavors", ..] => member_unless_read,
        ["secrets", _] if read && reveals(query) => Need::Admin,
        ["secrets"] => member_unless_read,
        ["secrets", ..] if read => Need::Read,
        ["secrets", name, ..] => Need::Secret(name.to_string()),
        ["service-connectors", ..] if read => Need::Read,
        ["service-connectors", name, "verify"] => Need::ConnectorUse(name.to_string()),
        ["service-connectors", ..] => Need::Admin,
        ["integrations"] if read => Need::Read,
        ["integrations", _] => Need::Member,
        // Steps are shell commands, run on the server as its own user.
        ["pipelines", "run"] => Need::Admin,
        // Anything else (init, backup, restore, stopping the server, a directory of
        // integrations on the server's disk, a route added later): admins only.
        _ => Need::Admin,
    }
}

/// Whether a query string asks for secret values: `reveal` set to anything but `false`,
/// however it is spelled or percent-encoded (the route's own parser decodes both).
pub fn reveals(query: &str) -> bool {
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let read = |s: &str| decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_string());
        read(k).trim().eq_ignore_ascii_case("reveal") && !read(v).eq_ignore_ascii_case("false")
    })
}

/// Percent-decoding of one path segment; `None` when it is not UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The record a path is about, for its ETag: a stack, or a component.
fn record_of(path: &str) -> Option<(crate::store::TreeId, String)> {
    let seg: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| decode(s).unwrap_or_else(|| s.to_string()))
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["api", "v1", "stacks", name, ..] if *name != "import" => {
            Some((crate::store::TreeId::Stacks, name.to_string()))
        }
        ["api", "v1", "components", t, name, ..] => {
            let t = t.parse::<ComponentType>().ok()?;
            Some((
                crate::store::TreeId::Components,
                crate::store::type_key(t, name),
            ))
        }
        _ => None,
    }
}

/// Whether `path` is about one stack or component (and so a GET of it carries an ETag).
pub fn names_record(path: &str) -> bool {
    record_of(path).is_some()
}

/// The version of the record `path` names, as an ETag (`"…"`): a hash of its stored
/// bytes, so any change gives another. `None` for a path about no such record.
pub fn etag(svc: &Service, path: &str) -> Result<Option<String>> {
    let Some((tree, key)) = record_of(path) else {
        return Ok(None);
    };
    Ok(svc
        .store()
        .get_raw(tree, &key)?
        .map(|bytes| format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&bytes))[..32])))
}

/// Refuses a change to a stack or component made from a version that is no longer the
/// stored one (`If-Match`).
/// Called with the catalog lock held, so nothing changes between the check and the write.
pub fn check_if_match(svc: &Service, path: &str, expected: &str) -> Result<()> {
    if !names_record(path) {
        // Versions are kept for stacks and components: elsewhere the header says nothing.
        return Ok(());
    }
    if expected.trim() == "*" {
        return match etag(svc, path)? {
            Some(_) => Ok(()),
            None => Err(Error::Stale {
                what: "the record `If-Match: *` asks for does not exist".into(),
                hint: "it was deleted; read it again".into(),
            }),
        };
    }
    let current = etag(svc, path)?;
    // Strong comparison (RFC 9110 13.1.1): a weak tag never matches.
    let matches = expected
        .split(',')
        .map(str::trim)
        .any(|t| !t.starts_with("W/") && Some(t) == current.as_deref());
    if matches {
        return Ok(());
    }
    Err(Error::Stale {
        what: match current {
            Some(now) => format!(
                "the record was changed since version {expected} was read (it is now {now})"
            ),
            None => format!("the record was deleted since version {expected} was read"),
        },
        hint: "read it again (GET gives its ETag), apply the change to what is there now, and send it with the new If-Match".into(),
    })
}

/// The routes of a team server's access, under `/api/v1`.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/users", get(user_list).post(user_create))
        .route(
            "/api/v1/users/{name}",
            axum::routing::patch(user_update).delete(user_delete),
        )
        .route("/api/v1/tokens", get(token_list).post(token_create))
        .route("/api/v1/tokens/{id}", delete(token_revoke))
        .route(
            "/api/v1/stacks/{name}/grants",
            get(stack_grants).post(stack_grant),
        )
        .route("/api/v1/stacks/{name}/grants/{user}", delete(stack_revoke))
        .route(
            "/api/v1/service-connectors/{name}/grants",
            get(connector_grants).post(connector_grant),
        )
        .route(
            "/api/v1/service-connectors/{name}/grants/{user}",
            delete(connector_revoke),
        )
        .route("/api/v1/audit", get(audit))
}

async fn whoami(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.whoami()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: Role,
}

async fn user_create(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: NewUser = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.user_create(&b.name, b.role)
            .map(|(user, token)| serde_json::json!({"user": user, "token": token}))
    })
    .await
}

async fn user_list(State(st): State<Shared>) -> Reply {
    call(st, StatusCode::OK, false, |s| s.user_list()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Role,
}

async fn user_update(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    let b: UserPatch = body(b)?;
    call(st, StatusCode::OK, true, move |s| {
        s.user_set_role(&name, b.role)
    })
    .await
}

async fn user_delete(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.user_delete(&name)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    user: Option<String>,
    #[serde(default = "default_token_name")]
    name: String,
}

fn default_token_name() -> String {
    "cli".into()
}

async fn token_create(State(st): State<Shared>, b: JsonBody) -> Reply {
    let b: NewToken = body(b)?;
    call(st, StatusCode::CREATED, true, move |s| {
        s.token_create(b.user.as_deref(), &b.name)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    #[serde(default)]
    user: Option<String>,
}

async fn token_list(State(st): State<Shared>, q: QueryResult<TokenQuery>) -> Reply {
    let q = query(q)?;
    call(st, StatusCode::OK, false, move |s| {
        s.token_list(q.user.as_deref())
    })
    .await
}

async fn token_revoke(State(st): State<Shared>, Path(id): Path<String>) -> Reply {
    call(st, StatusCode::OK, true, move |s| s.token_revoke(&id)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGrant {
    user: String,
    /// A stack's `member` or `viewer`; a connector's grant is always `member` (may use it).
    #[serde(default = "member")]
    role: Role,
}

fn member() -> Role {
    Role::Member
}

/// The grants of a stack or connector (`kind`): the routes of each are these three.
async fn grants(st: Shared, kind: &'static str, name: String) -> Reply {
    call(st, StatusCode::OK, false, move |s| {
        if kind == "stack" {
            s.stack_or_err(&name)?;
        }
        s.grants_of(kind, &name)
    })
    .await
}

/// A connector's grant is always `member` (may use it), whatever the body says.
async fn grant(st: Shared, kind: &'static str, name: String, b: JsonBody) -> Reply {
    let b: NewGrant = body(b)?;
    let role = if kind == "stack" {
        b.role
    } else {
        Role::Member
    };
    call(st, StatusCode::OK, true, move |s| {
        s.grant(kind, &name, &b.user, role)
    })
    .await
}

async fn revoke(st: Shared, kind: &'static str, name: String, user: String) -> Reply {
    call(st, StatusCode::NO_CONTENT, true, move |s| {
        s.revoke(kind, &name, &user)
    })
    .await
}

async fn stack_grants(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    grants(st, "stack", name).await
}

async fn stack_grant(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    grant(st, "stack", name, b).await
}

async fn stack_revoke(
    State(st): State<Shared>,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    revoke(st, "stack", name, user).await
}

async fn connector_grants(State(st): State<Shared>, Path(name): Path<String>) -> Reply {
    grants(st, "connector", name).await
}

async fn connector_grant(State(st): State<Shared>, Path(name): Path<String>, b: JsonBody) -> Reply {
    grant(st, "connector", name, b).await
}

async fn connector_revoke(
    State(st): State<Shared>,
    Path((name, user)): Path<(String, String)>,
) -> Reply {
    revoke(st, "connector", name, user).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    since: u64,
    #[serde(default = "audit_limit")]
    limit: usize,
}

fn audit_limit() -> usize {
    1000
}

async fn audit(State(st): State<Shared>, q: QueryResult<AuditQuery>) -> Reply {
    let q = query(q)?;
    if !(1..=100_000).contains(&q.limit) {
        return Err(super::routes::ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`limit` is {}", q.limit),
            "give `limit` from 1 to 100000",
        ));
    }
    call(st, StatusCode::OK, false, move |s| {
        s.audit_list(q.since, q.limit)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_needs_a_role_and_unknown_routes_need_admin() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(need(&get, "/api/v1/stacks", ""), Need::Read);
        assert_eq!(need(&post, "/api/v1/stacks", ""), Need::Member);
        assert_eq!(
            need(&post, "/api/v1/stacks/prod/up", ""),
            Need::StackLifecycle("prod".into())
        );
        assert_eq!(
            need(&post, "/api/v1/stacks/a%2Fb/down", ""),
            Need::StackLifecycle("a/b".into())
        );
        assert_eq!(
            need(&Method::PATCH, "/api/v1/stacks/prod", ""),
            Need::StackChange("prod".into())
        );
        assert_eq!(
            need(&get, "/api/v1/stacks/prod", ""),
            Need::StackRead("prod".into())
        );
        assert_eq!(
            need(&Method::DELETE, "/api/v1/components/orchestrator/o", ""),
            Need::Component(ComponentType::Orchestrator, "o".into())
        );
        assert_eq!(need(&get, "/api/v1/secrets/s", "reveal=true"), Need::Admin);
        assert_eq!(need(&get, "/api/v1/secrets/s", ""), Need::Read);
        assert_eq!(need(&post, "/api/v1/service-connectors", ""), Need::Admin);
        assert_eq!(need(&post, "/api/v1/pipelines/run", ""), Need::Admin);
        assert_eq!(need(&post, "/api/v1/restore", ""), Need::Admin);
        assert_eq!(
            need(&post, "/api/v1/stacks/prod/copy", ""),
            Need::StackCopy("prod".into())
        );
        assert_eq!(need(&Method::DELETE, "/api/v1/runs/r1", ""), Need::Admin);
        assert_eq!(
            need(&Method::PATCH, "/api/v1/secrets/db", ""),
            Need::Secret("db".into())
        );
        assert_eq!(
            need(&get, "/api/v1/artifact-stores/a/files", "path=x"),
            Need::ComponentRead(ComponentType::ArtifactStore, "a".into())
        );
        assert_eq!(need(&post, "/api/v1/daemon/stop", ""), Need::Admin);
        assert_eq!(need(&post, "/api/v1/some-new-route", ""), Need::Admin);
        assert_eq!(need(&get, "/api/v1/audit", ""), Need::Admin);
        assert_eq!(need(&get, "/elsewhere", ""), Need::Admin);
    }

    #[test]
    fn an_etag_is_about_the_stack_or_component_a_path_names() {
        assert_eq!(
            record_of("/api/v1/stacks/prod/rename"),
            Some((crate::store::TreeId::Stacks, "prod".into()))
        );
        assert_eq!(
            record_of("/api/v1/components/orchestrator/o%20x"),
            Some((crate::store::TreeId::Components, "orchestrator/o x".into()))
        );
        assert_eq!(record_of("/api/v1/stacks/import"), None);
        assert_eq!(record_of("/api/v1/secrets/s"), None);
    }
}
