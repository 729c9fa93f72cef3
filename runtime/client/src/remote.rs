//! The remote backend: each operation is a call of a daemon's REST API, the same routes
//! any program uses (`/api/v1/openapi.json`). `up` and `down` start an operation and
//! follow its progress at `/api/v1/operations/{id}`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::backend::{Backend, Members};
use crate::api::discovery::DaemonFile;
use crate::api::{self, ErrorBody, Info, OpState, Operation};
use crate::error::{Error, Result};
use crate::model::{ComponentType, FlavorRecord, LimitOverrides};
use crate::service::{AccessGrant, AuditEntry, NewToken, Role, TokenView, UserView, WhoAmI};
use crate::service::{
    ArtifactEntry, ArtifactView, BackupReport, ComponentView, ConnectorCheck, ConnectorView,
    FlavorDetail, FlavorOptions, FlavorView, ImportReport, InitReport, Installed, IntegrationView,
    Pipeline, PostReport, Progress, RunEvent, RunOptions, RunReport, RunSummary, SecretView,
    StackExport, StackView, StepLog, StepStatus, Watch,
};

/// What a request carries.
enum Payload<'a> {
    None,
    Json(Value),
    Bytes(&'a [u8]),
}

impl From<Option<Value>> for Payload<'_> {
    fn from(v: Option<Value>) -> Self {
        v.map_or(Payload::None, Payload::Json)
    }
}

/// A daemon, reached over HTTP on loopback.
pub struct Remote {
    file: DaemonFile,
    /// A team server's base URL (`http://host:port`); `None` for a local daemon.
    server: Option<String>,
    agent: ureq::Agent,
    /// This process's working directory, sent with each call
    /// ([`api::CWD_HEADER`]): relative paths are taken from it, as in-process.
    cwd: Option<String>,
    warnings: Mutex<Vec<String>>,
    logs: Mutex<Vec<String>>,
}

/// How long a call may take to answer. Lifecycle calls answer at once (they run as
/// operations); a pipeline run or a backup answers when it is done, which a flavor's
/// deadlines (at most 10 min per call) bound.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3600);

impl Remote {
    pub fn new(file: DaemonFile) -> Remote {
        let agent = agent(None);
        Remote {
            file,
            server: None,
            agent,
            cwd: std::env::current_dir().ok().map(|d| api::encode_path(&d)),
            warnings: Mutex::default(),
            logs: Mutex::default(),
        }
    }

    /// A team server, as `strata login` recorded it: its URL (`http://` or `https://`),
    /// the user's token, and for https a certificate to trust besides the public ones.
    pub fn server(login: &crate::login::Login) -> Result<Remote> {
        let url = login.url.trim_end_matches('/').to_string();
        let mut r = Remote::new(DaemonFile {
            pid: 0,
            address: url.clone(),
            token: login.token.clone(),
            started_at: 0,
            version: String::new(),
            proc_start: 0,
        });
        if let Some(ca) = &login.ca_cert {
            let pem =
                std::fs::read(ca).map_err(|e| Error::io(format!("reading {}", ca.display()), e))?;
            let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| {
                Error::invalid(
                    format!("{} is not a PEM certificate: {e}", ca.display()),
                    "give --ca-cert the server's certificate (or its issuer's), in PEM",
                )
            })?;
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    cert,
                ])))
                .build();
            r.agent = agent(Some(tls));
        }
        r.server = Some(url);
        // A server's callers are elsewhere: their working directory means nothing there.
        r.cwd = None;
        Ok(r)
    }

    /// The address requests go to.
    pub fn base(&self) -> String {
        match &self.server {
            Some(url) => url.clone(),
            None => format!("http://{}", self.file.address),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        if let Some(url) = &self.server {
            let said = e.to_string();
            if said.contains("certificate") {
                return Error::invalid(
                    format!("the strata server at {url} is not trusted: {said}"),
                    "if its certificate is not signed by a public authority, log in with `--ca-cert FILE`, FILE its issuer's certificate (PEM)",
                );
            }
            return Error::Unavailable {
                what: format!("the strata server at {url} does not answer: {said}"),
                hint: "check the address (`strata whoami` shows the one you logged in to) and that the server runs; `strata logout` goes back to the local home".into(),
            };
        }
        Error::invalid(
            format!(
                "the strata daemon (pid {}) at http://{} does not answer: {e}",
                self.file.pid, self.file.address
            ),
            "see `strata daemon logs`; `strata daemon stop` then `strata daemon start` restarts it",
        )
    }

    /// A daemon that answers in a way this client does not understand: when its version
    /// is not this one, that is why, and the error says so.
    fn mismatch(&self, theirs: Option<&str>, what: String) -> Error {
        let ours = env!("CARGO_PKG_VERSION");
        match theirs {
            Some(v) if v == ours => Error::Internal(format!(
                "the strata daemon (version {v}, the same as this command) answered {what}"
            )),
            theirs => Error::invalid(
                format!(
                    "the strata daemon at http://{} runs {}, and this command is strata {ours}: they do not speak the same API ({what})",
                    self.file.address,
                    theirs.map_or(
                        "a strata too old to say its version".to_string(),
                        |v| format!("strata {v}")
                    )
                ),
                "restart the daemon with this version: `strata daemon stop`, then `strata daemon start`",
            ),
        }
    }

    /// One call: `body` as JSON (or none), the answer read as `T`. Warnings and logs the
    /// daemon sends with it are kept for [`Backend::take_warnings`] / [`Backend::take_logs`].
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        self.call_with(method, path, body.into())
    }

    /// [`Remote::call`] with any payload: JSON, bytes or none.
    fn call_with<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Payload<'_>,
    ) -> Result<T> {
        let (mut resp, theirs) = self.send(method, path, body, "application/json")?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(api::MAX_UPLOAD as u64)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&text).map_err(|e| {
            self.mismatch(
                theirs.as_deref(),
                format!("{method} {path} with a body this command cannot read: {e}"),
            )
        })
    }

    /// Sends one request asking for `accept`; a successful answer is returned unread,
    /// with the daemon's version, and an error answer becomes the error it names.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Payload,
        accept: &str,
    ) -> Result<(ureq::http::Response<ureq::Body>, Option<String>)> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("Authorization", format!("Bearer {}", self.file.token))
            .header("Accept", accept)
            .header(api::WORDING_HEADER, "cli");
        let request = match &self.cwd {
            Some(cwd) => request.header(api::CWD_HEADER, cwd),
            None => request,
        };
        let answer = match body {
            Payload::Json(b) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&b).expect("invariant: JSON serializes"))
                    .expect("invariant: a valid request"),
            ),
            Payload::Bytes(bytes) => self.agent.run(
                request
                    .header("Content-Type", "application/octet-stream")
                    .body(bytes)
                    .expect("invariant: a valid request"),
            ),
            Payload::None => self
                .agent
                .run(request.body(()).expect("invariant: a valid request")),
        };
        let mut resp = answer.map_err(|e| self.unreachable(e))?;
        let theirs = resp
            .headers()
            .get(api::VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.keep_notes(resp.headers());
        let status = resp.status();
        if status.is_success() {
            if status == ureq::http::StatusCode::NO_CONTENT {
                // `()` reads `null`; nothing else is answered with no content.
                let empty = ureq::http::Response::new(ureq::Body::builder().data("null"));
                return Ok((empty, theirs));
            }
            return Ok((resp, theirs));
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let error = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::from_value::<ErrorBody>(v.get("error")?.clone()).ok());
        let ours = Some(env!("CARGO_PKG_VERSION"));
        Err(match error {
            Some(b) if b.code == "no_route" || b.code == "method_not_allowed" => self.mismatch(
                theirs.as_deref(),
                format!("`{}` to {method} {path}", b.message),
            ),
            // This client sends only what its API takes: a daemon of another version that
            // cannot read it lacks a field or a parameter.
            Some(b) if b.code == "bad_request" && theirs.as_deref() != ours => self.mismatch(
                theirs.as_deref(),
                format!("`{}` to {method} {path}", b.message),
            ),
            Some(b) => Error::Remote {
                status: status.as_u16(),
                code: b.code,
                message: b.message,
                hint: b.hint,
            },
            None => self.mismatch(
                theirs.as_deref(),
                format!(
                    "HTTP {status} to {method} {path}: {}",
                    String::from_utf8_lossy(&text)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            ),
        })
    }

    fn keep_notes(&self, headers: &ureq::http::HeaderMap) {
        let read = |name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| serde_json::from_slice::<String>(v.as_bytes()).ok())
                .collect()
        };
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(read(api::WARNING_HEADER));
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(read(api::LOG_HEADER));
    }

    /// A one-time link to the daemon's dashboard (`strata dashboard`): its URL.
    pub fn dashboard_link(&self) -> Result<String> {
        let v: Value = self.call("POST", "/api/v1/dashboard/links", None)?;
        v["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.mismatch(None, "a dashboard link without its `url`".into()))
    }

    /// `GET /api/v1/daemon`.
    pub fn info(&self) -> Result<Info> {
        self.call("GET", "/api/v1/daemon", None)
    }

    /// Starts a lifecycle operation asking for its events in the same answer (one
    /// request), and follows them to the end, reporting each step as the daemon takes it.
    fn operation(&self, path: &str, on: &mut dyn FnMut(Progress)) -> Result<Value> {
        use std::io::BufRead;
        let (resp, theirs) = self.send("POST", path, Payload::None, "text/event-stream")?;
        let streamed = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streamed {
            let what = format!("POST {path} without the event stream it asked for");
            return Err(self.mismatch(theirs.as_deref(), what));
        }
        let mut started = None;
        let garbled = |e: serde_json::Error| {
            self.mismatch(
                theirs.as_deref(),
                format!("an event this command cannot read: {e}"),
            )
        };
        let mut event = String::new();
        let mut end = None;
        let action = |started: &Option<String>| started.clone().unwrap_or_else(|| path.to_string());
        for line in std::io::BufReader::new(resp.into_body().into_reader()).lines() {
            // A daemon that stops closes the stream: the run was cut off.
            let line = line.map_err(|_| cut_off(&action(&started)))?;
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                match event.as_str() {
                    "start" => {
                        let op = serde_json::from_str::<Operation>(data).map_err(garbled)?;
                        started = Some(op.action);
                    }
                    "progress" => on(serde_json::from_str(data).map_err(garbled)?),
                    "end" => {
                        end = Some(serde_json::from_str::<Operation>(data).map_err(garbled)?);
                        break;
                    }
                    _ => {}
                }
            }
        }
        let op = end.ok_or_else(|| cut_off(&action(&started)))?;
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(op.warnings);
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(op.logs);
        match (op.state, op.error) {
            (OpState::Succeeded, _) => Ok(op.result.unwrap_or(Value::Null)),
            (OpState::Interrupted, _) => Err(cut_off(&op.action)),
            (_, Some(b)) => Err(Error::Remote {
                status: 422,
                code: b.code,
                message: b.message,
                hint: b.hint,
            }),
            (state, None) => Err(Error::Internal(format!(
                "operation {} ended {state:?} without an error",
                op.id
            ))),
        }
    }

    fn active_or(&self, name: Option<&str>) -> Result<String> {
        match name {
            Some(n) => Ok(n.to_string()),
            None => self.stack_get(),
        }
    }
}

/// A lifecycle run its daemon did not finish: it stopped (or was stopped) first.
fn cut_off(action: &str) -> Error {
    Error::invalid(
        format!("the strata daemon stopped before `{action}` finished (was it stopped?)"),
        "the components' phases show where each one is (`strata stack describe`); run the command again to resume it",
    )
}

/// The HTTP client of a daemon or a server (`tls`: whom an https server may be).
fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_response(Some(ANSWER_TIMEOUT))
        // The daemon closes a connection idle for 10 s: reuse one for less than that.
        .max_idle_age(Duration::from_secs(5))
        // Warnings and flavor logs come back in headers (`Strata-Warning`, `Strata-Log`).
        .max_response_header_size(api::MAX_NOTES_BYTES + 64 * 1024);
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// Where the grants of a stack or a connector are.
fn grants_path(kind: &str, name: &str) -> String {
    match kind {
        "stack" => format!("/api/v1/stacks/{}/grants", seg(name)),
        _ => format!("/api/v1/service-connectors/{}/grants", seg(name)),
    }
}

/// `s` as one segment of a URL path: every byte but letters, digits, `-` and `_`
/// percent-encoded (also `.`, so that `..` stays a name and never a step up).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn members(m: &Members) -> Value {
    Value::Object(
        m.iter()
            .map(|(t, names)| (t.to_string(), json!(names)))
            .collect(),
    )
}

fn limits(body: &mut Value, l: &LimitOverrides) {
    if let Some(t) = l.timeout_ms {
        body["timeout_ms"] = json!(t);
    }
    if let Some(m) = l.memory_mb {
        body["memory_mb"] = json!(m);
    }
}

fn path_text(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| {
        Error::invalid(
            format!("the path {p:?} is not valid UTF-8"),
            "give the file a name in UTF-8",
        )
    })
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
}

#[derive(serde::Deserialize)]
struct Deleted {
    deleted: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Renamed {
    rewritten: Vec<String>,
}

impl Backend for Remote {
    fn init(&self) -> Result<InitReport> {
        self.call("POST", "/api/v1/init", None)
    }
    fn stack_list(&self) -> Result<Vec<StackView>> {
        self.call("GET", "/api/v1/stacks", None)
    }
    fn stack_describe(&self, name: Option<&str>) -> Result<StackView> {
        let name = self.active_or(name)?;
        self.call("GET", &format!("/api/v1/stacks/{}", seg(&name)), None)
    }
    fn stack_get(&self) -> Result<String> {
        Ok(self
            .call::<Named>("GET", "/api/v1/active-stack", None)?
            .name)
    }
    fn stack_set(&self, name: &str) -> Result<StackView> {
        self.call("PUT", "/api/v1/active-stack", Some(json!({ "name": name })))
    }
    fn stack_register(&self, name: &str, c: Members, set_active: bool) -> Result<StackView> {
        let body = json!({ "name": name, "components": members(&c), "set_active": set_active });
        self.call("POST", "/api/v1/stacks", Some(body))
    }
    fn stack_update(&self, name: &str, c: Members) -> Result<StackView> {
        let path = format!("/api/v1/stacks/{}", seg(name));
        self.call("PATCH", &path, Some(json!({ "components": members(&c) })))
    }
    fn stack_remove_component(&self, name: &str, c: Members) -> Result<StackView> {
        let path = format!("/api/v1/stacks/{}", seg(name));
        self.call("PATCH", &path, Some(json!({ "remove": members(&c) })))
    }
    fn stack_rename(&self, name: &str, new_name: &str) -> Result<StackView> {
        let path = format!("/api/v1/stacks/{}/rename", seg(name));
        self.call("POST", &path, Some(json!({ "new_name": new_name })))
    }
    fn stack_copy(&self, name: &str, new_name: &str) -> Result<StackView> {
        let path = format!("/api/v1/stacks/{}/copy", seg(name));
        self.call("POST", &path, Some(json!({ "new_name": new_name })))
    }
    fn stack_delete(&self, name: &str) -> Result<()> {
        self.call("DELETE", &format!("/api/v1/stacks/{}", seg(name)), None)
    }
    fn stack_delete_recursive(&self, name: &str) -> Result<Vec<String>> {
        let path = format!("/api/v1/stacks/{}?recursive=true", seg(name));
        Ok(self.call::<Deleted>("DELETE", &path, None)?.deleted)
    }
    fn stack_export(&self, name: &str) -> Result<StackExport> {
        self.call("GET", &format!("/api/v1/stacks/{}/export", seg(name)), None)
    }
    fn stack_import(
        &self,
        e: &StackExport,
        name: Option<&str>,
        force: bool,
    ) -> Result<ImportReport> {
        let mut body = json!({ "export": e, "force": force });
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        self.call("POST", "/api/v1/stacks/import", Some(body))
    }
    fn stack_up(&self, name: Option<&str>, on: &mut dyn FnMut(Progress)) -> Result<StackView> {
        let path = match name {
            Some(n) => format!("/api/v1/stacks/{}/up", seg(n)),
            None => "/api/v1/active-stack/up".to_string(),
        };
        let v = self.operation(&path, on)?;
        serde_json::from_value(v).map_err(|e| self.mismatch(None, e.to_string()))
    }
    fn stack_down(
        &self,
        name: Option<&str>,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<StackView> {
        let path = match name {
            Some(n) => format!("/api/v1/stacks/{}/down?force={force}", seg(n)),
            None => format!("/api/v1/active-stack/down?force={force}"),
        };
        let v = self.operation(&path, on)?;
        serde_json::from_value(v).map_err(|e| self.mismatch(None, e.to_string()))
    }
    fn component_list(&self, t: ComponentType) -> Result<Vec<ComponentView>> {
        self.call("GET", &format!("/api/v1/components/{t}"), None)
    }
    fn component_describe(
        &self,
        t: ComponentType,
        name: &str,
        live: bool,
    ) -> Result<ComponentView> {
        let path = format!("/api/v1/components/{t}/{}?status={live}", seg(name));
        self.call("GET", &path, None)
    }
    fn component_register(
        &self,
        t: ComponentType,
        name: &str,
        flavor: &str,
        config: BTreeMap<String, String>,
        l: LimitOverrides,
    ) -> Result<ComponentView> {
        let mut body = json!({ "name": name, "flavor": flavor, "config": config });
        limits(&mut body, &l);
        self.call("POST", &format!("/api/v1/components/{t}"), Some(body))
    }
    fn component_update(
        &self,
        t: ComponentType,
        name: &str,
        changes: BTreeMap<String, String>,
        l: LimitOverrides,
    ) -> Result<ComponentView> {
        let mut body = json!({ "config": changes });
        limits(&mut body, &l);
        let path = format!("/api/v1/components/{t}/{}", seg(name));
        self.call("PATCH", &path, Some(body))
    }
    fn component_remove_attribute(
        &self,
        t: ComponentType,
        name: &str,
        key: &str,
    ) -> Result<ComponentView> {
        let path = format!("/api/v1/components/{t}/{}/config/{}", seg(name), seg(key));
        self.call("DELETE", &path, None)
    }
    fn component_rename(
        &self,
        t: ComponentType,
        name: &str,
        new_name: &str,
    ) -> Result<ComponentView> {
        let path = format!("/api/v1/components/{t}/{}/rename", seg(name));
        self.call("POST", &path, Some(json!({ "new_name": new_name })))
    }
    fn component_copy(
        &self,
        t: ComponentType,
        name: &str,
        new_name: &str,
    ) -> Result<ComponentView> {
        let path = format!("/api/v1/components/{t}/{}/copy", seg(name));
        self.call("POST", &path, Some(json!({ "new_name": new_name })))
    }
    fn component_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!("/api/v1/components/{t}/{}", seg(name)),
            None,
        )
    }
    fn component_up(
        &self,
        t: ComponentType,
        name: &str,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        self.operation(&format!("/api/v1/components/{t}/{}/up", seg(name)), on)
            .map(drop)
    }
    fn component_down(
        &self,
        t: ComponentType,
        name: &str,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let path = format!("/api/v1/components/{t}/{}/down?force={force}", seg(name));
        self.operation(&path, on).map(drop)
    }
    fn flavor_list(&self, t: Option<ComponentType>) -> Result<Vec<FlavorView>> {
        match t {
            Some(t) => self.call("GET", &format!("/api/v1/flavors/{t}"), None),
            None => self.call("GET", "/api/v1/flavors", None),
        }
    }
    fn flavor_describe(&self, t: ComponentType, name: &str) -> Result<FlavorDetail> {
        let record: FlavorRecord =
            self.call("GET", &format!("/api/v1/flavors/{t}/{}", seg(name)), None)?;
        let view = self
            .flavor_list(Some(t))?
            .into_iter()
            .find(|v| v.flavor == record.info.name)
            .ok_or_else(|| {
                Error::not_found(
                    format!("{} flavor `{name}`", t.label()),
                    format!("it was deleted just now: see `strata {t} flavor list`"),
                )
            })?;
        Ok(FlavorDetail { view, record })
    }
    fn flavor_register(
        &self,
        t: ComponentType,
        path: &Path,
        opts: FlavorOptions,
    ) -> Result<FlavorRecord> {
        let mut q = format!("replace={}", opts.replace);
        if let Some(v) = opts.timeout_ms {
            q.push_str(&format!("&timeout_ms={v}"));
        }
        if let Some(v) = opts.memory_mb {
            q.push_str(&format!("&memory_mb={v}"));
        }
        if !opts.allow_origins.is_empty() {
            q.push_str(&format!(
                "&allow_origins={}",
                seg(&opts.allow_origins.join(","))
            ));
        }
        if self.server.is_some() {
            // A team server is another machine: the .wasm goes up, its file name with it.
            let bytes = std::fs::read(path).map_err(|e| Error::Invalid {
                what: format!("cannot read `{}`: {e}", path.display()),
                hint: "give the path of a `.wasm` component, e.g. target/wasm32-wasip2/release/my_flavor.wasm".into(),
            })?;
            let name = path.file_name().map_or_else(
                || "flavor.wasm".into(),
                |n| n.to_string_lossy().into_owned(),
            );
            q.push_str(&format!("&filename={}", seg(&name)));
            return self.call_with(
                "POST",
                &format!("/api/v1/flavors/{t}?{q}"),
                Payload::Bytes(&bytes),
            );
        }
        let body = json!({ "path": path_text(path)? });
        self.call("POST", &format!("/api/v1/flavors/{t}?{q}"), Some(body))
    }
    fn flavor_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!("/api/v1/flavors/{t}/{}", seg(name)),
            None,
        )
    }
    fn secret_list(&self) -> Result<Vec<SecretView>> {
        self.call("GET", "/api/v1/secrets", None)
    }
    fn secret_create(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView> {
        self.call(
            "POST",
            "/api/v1/secrets",
            Some(json!({ "name": name, "values": values })),
        )
    }
    fn secret_get(&self, name: &str, reveal: bool) -> Result<SecretView> {
        let path = format!("/api/v1/secrets/{}?reveal={reveal}", seg(name));
        self.call("GET", &path, None)
    }
    fn secret_update(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView> {
        let path = format!("/api/v1/secrets/{}", seg(name));
        self.call("PATCH", &path, Some(json!({ "values": values })))
    }
    fn secret_delete(&self, name: &str) -> Result<()> {
        self.call("DELETE", &format!("/api/v1/secrets/{}", seg(name)), None)
    }
    fn secret_rename(&self, name: &str, new_name: &str) -> Result<Vec<String>> {
        let path = format!("/api/v1/secrets/{}/rename", seg(name));
        Ok(self
            .call::<Renamed>("POST", &path, Some(json!({ "new_name": new_name })))?
            .rewritten)
    }
    fn connector_list(&self) -> Result<Vec<ConnectorView>> {
        self.call("GET", "/api/v1/service-connectors", None)
    }
    fn connector_register(
        &self,
        name: &str,
        kind: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        let body = json!({ "name": name, "type": kind, "values": values });
        self.call("POST", "/api/v1/service-connectors", Some(body))
    }
    fn connector_describe(&self, name: &str) -> Result<ConnectorView> {
        self.call(
            "GET",
            &format!("/api/v1/service-connectors/{}", seg(name)),
            None,
        )
    }
    fn connector_update(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        let path = format!("/api/v1/service-connectors/{}", seg(name));
        self.call("PATCH", &path, Some(json!({ "values": values })))
    }
    fn connector_rename(&self, name: &str, new_name: &str) -> Result<ConnectorView> {
        let path = format!("/api/v1/service-connectors/{}/rename", seg(name));
        self.call("POST", &path, Some(json!({ "new_name": new_name })))
    }
    fn connector_delete(&self, name: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!("/api/v1/service-connectors/{}", seg(name)),
            None,
        )
    }
    fn connector_verify(&self, name: &str) -> Result<ConnectorCheck> {
        let path = format!("/api/v1/service-connectors/{}/verify", seg(name));
        self.call("POST", &path, None)
    }
    fn alerter_post(
        &self,
        name: &str,
        message: &str,
        params: BTreeMap<String, String>,
    ) -> Result<PostReport> {
        let path = format!("/api/v1/components/alerter/{}/post", seg(name));
        self.call(
            "POST",
            &path,
            Some(json!({ "message": message, "params": params })),
        )
    }
    fn artifact_put(
        &self,
        store: &str,
        path: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<ArtifactView> {
        let at = format!(
            "/api/v1/artifact-stores/{}/files?key={}&overwrite={overwrite}",
            seg(store),
            seg(path)
        );
        self.call_with("PUT", &at, Payload::Bytes(data))
    }
    fn artifact_get(&self, store: &str, path: &str) -> Result<Vec<u8>> {
        let at = format!(
            "/api/v1/artifact-stores/{}/files?key={}",
            seg(store),
            seg(path)
        );
        let (mut resp, _) = self.send("GET", &at, Payload::None, "application/octet-stream")?;
        resp.body_mut()
            .with_config()
            .limit(crate::service::MAX_ARTIFACT_BYTES)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))
    }
    fn artifact_list(&self, store: &str, path: &str) -> Result<Vec<ArtifactEntry>> {
        let at = format!(
            "/api/v1/artifact-stores/{}/list?key={}",
            seg(store),
            seg(path)
        );
        self.call("GET", &at, None)
    }
    fn artifact_stat(&self, store: &str, path: &str) -> Result<ArtifactView> {
        let at = format!(
            "/api/v1/artifact-stores/{}/stat?key={}",
            seg(store),
            seg(path)
        );
        self.call("GET", &at, None)
    }
    fn artifact_remove(&self, store: &str, path: &str, recursive: bool) -> Result<()> {
        let at = format!(
            "/api/v1/artifact-stores/{}/files?key={}&recursive={recursive}",
            seg(store),
            seg(path)
        );
        self.call("DELETE", &at, None)
    }
    fn integration_list(&self) -> Result<Vec<IntegrationView>> {
        self.call("GET", "/api/v1/integrations", None)
    }
    fn integration_install(&self, name_or_dir: &str, replace: bool) -> Result<Vec<Installed>> {
        if Path::new(name_or_dir).is_absolute() {
            let body = json!({ "path": name_or_dir, "replace": replace });
            return self.call("POST", "/api/v1/integrations", Some(body));
        }
        let path = format!(
            "/api/v1/integrations/{}?replace={replace}",
            seg(name_or_dir)
        );
        self.call("PUT", &path, None)
    }
    fn integration_uninstall(&self, name: &str) -> Result<Vec<String>> {
        let path = format!("/api/v1/integrations/{}", seg(name));
        Ok(self.call::<Deleted>("DELETE", &path, None)?.deleted)
    }
    fn pipeline_run(
        &self,
        p: &Pipeline,
        params: BTreeMap<String, String>,
        opts: &RunOptions,
        watch: Watch<'_>,
    ) -> Result<RunReport> {
        let body = json!({
            "pipeline": p,
            "params": params,
            "dir": path_text(&opts.dir)?,
            "jobs": opts.jobs,
            "no_cache": opts.no_cache,
            "notify": opts.notify,
            "wait": false,
        });
        let started: RunReport = self.call("POST", "/api/v1/pipelines/run", Some(body))?;
        let id = started.run_id.clone();
        watch(RunEvent::Started { run_id: &id });
        // Follow it: each step's status as it changes, and what running steps write.
        let mut shown: BTreeMap<String, StepStatus> = BTreeMap::new();
        let mut offsets: BTreeMap<String, u64> = BTreeMap::new();
        let at = format!("/api/v1/runs/{}", seg(&id));
        let mut pause = Duration::from_millis(5);
        loop {
            let r: RunReport = self.call("GET", &at, None)?;
            for s in &r.steps {
                let ran = !matches!(
                    s.status,
                    StepStatus::Pending | StepStatus::Cached | StepStatus::Skipped
                );
                if ran && (s.status == StepStatus::Running || shown.get(&s.name) != Some(&s.status))
                {
                    let from = offsets.get(&s.name).copied().unwrap_or(0);
                    let logs: Vec<StepLog> = self.call(
                        "GET",
                        &format!("{at}/logs?step={}&from={from}", seg(&s.name)),
                        None,
                    )?;
                    for l in logs {
                        if !l.text.is_empty() {
                            watch(RunEvent::Output {
                                step: &s.name,
                                text: &l.text,
                            });
                        }
                        offsets.insert(s.name.clone(), l.next);
                    }
                }
                if shown.get(&s.name) != Some(&s.status) && s.status != StepStatus::Pending {
                    let detail = s.detail();
                    watch(RunEvent::Step {
                        step: &s.name,
                        status: s.status,
                        detail: &detail,
                    });
                    shown.insert(s.name.clone(), s.status);
                }
            }
            if r.status != crate::service::RunStatus::Running {
                // What the flavors logged ran on the daemon's thread for the run, after
                // this request was answered: the record keeps it.
                self.logs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(r.logs.iter().cloned());
                for n in &r.notices {
                    watch(RunEvent::Output { step: "", text: n });
                }
                return Ok(r);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
    fn run_list(&self, pipeline: Option<&str>) -> Result<Vec<RunSummary>> {
        let path = match pipeline {
            Some(p) => format!("/api/v1/runs?pipeline={}", seg(p)),
            None => "/api/v1/runs".to_string(),
        };
        self.call("GET", &path, None)
    }
    fn run_get(&self, id: &str) -> Result<RunReport> {
        self.call("GET", &format!("/api/v1/runs/{}", seg(id)), None)
    }
    fn run_logs(&self, id: &str, step: Option<&str>, from: u64) -> Result<Vec<StepLog>> {
        let mut path = format!("/api/v1/runs/{}/logs?from={from}", seg(id));
        if let Some(s) = step {
            path.push_str(&format!("&step={}", seg(s)));
        }
        self.call("GET", &path, None)
    }
    fn run_cancel(&self, id: &str) -> Result<RunReport> {
        self.call("POST", &format!("/api/v1/runs/{}/cancel", seg(id)), None)
    }
    fn run_delete(&self, id: &str, keep_artifacts: bool) -> Result<RunReport> {
        self.call(
            "DELETE",
            &format!("/api/v1/runs/{}?keep_artifacts={keep_artifacts}", seg(id)),
            None,
        )
    }
    fn backup(&self, file: &Path, force: bool) -> Result<BackupReport> {
        let body = json!({ "file": path_text(file)?, "force": force });
        self.call("POST", "/api/v1/backup", Some(body))
    }
    fn restore(&self, file: &Path, force: bool) -> Result<BackupReport> {
        let body = json!({ "file": path_text(file)?, "force": force });
        self.call("POST", "/api/v1/restore", Some(body))
    }
    fn whoami(&self) -> Result<WhoAmI> {
        let mut w: WhoAmI = self.call("GET", "/api/v1/whoami", None)?;
        w.server = self.base();
        Ok(w)
    }
    fn user_create(&self, name: &str, role: Role) -> Result<(UserView, NewToken)> {
        #[derive(serde::Deserialize)]
        struct Created {
            user: UserView,
            token: NewToken,
        }
        let c: Created = self.call(
            "POST",
            "/api/v1/users",
            Some(json!({ "name": name, "role": role })),
        )?;
        Ok((c.user, c.token))
    }
    fn user_list(&self) -> Result<Vec<UserView>> {
        self.call("GET", "/api/v1/users", None)
    }
    fn user_set_role(&self, name: &str, role: Role) -> Result<UserView> {
        let path = format!("/api/v1/users/{}", seg(name));
        self.call("PATCH", &path, Some(json!({ "role": role })))
    }
    fn user_delete(&self, name: &str) -> Result<()> {
        self.call("DELETE", &format!("/api/v1/users/{}", seg(name)), None)
    }
    fn token_create(&self, user: Option<&str>, name: &str) -> Result<NewToken> {
        self.call(
            "POST",
            "/api/v1/tokens",
            Some(json!({ "user": user, "name": name })),
        )
    }
    fn token_list(&self, user: Option<&str>) -> Result<Vec<TokenView>> {
        let path = match user {
            Some(u) => format!("/api/v1/tokens?user={}", seg(u)),
            None => "/api/v1/tokens".to_string(),
        };
        self.call("GET", &path, None)
    }
    fn token_revoke(&self, id: &str) -> Result<TokenView> {
        self.call("DELETE", &format!("/api/v1/tokens/{}", seg(id)), None)
    }
    fn grant(&self, kind: &str, name: &str, user: &str, role: Role) -> Result<AccessGrant> {
        self.call(
            "POST",
            &grants_path(kind, name),
            Some(json!({ "user": user, "role": role })),
        )
    }
    fn revoke(&self, kind: &str, name: &str, user: &str) -> Result<()> {
        let path = format!("{}/{}", grants_path(kind, name), seg(user));
        self.call("DELETE", &path, None)
    }
    fn grants(&self, kind: &str, name: &str) -> Result<Vec<AccessGrant>> {
        self.call("GET", &grants_path(kind, name), None)
    }
    fn audit(&self, since_ms: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let path = format!("/api/v1/audit?since={since_ms}&limit={limit}");
        self.call("GET", &path, None)
    }
    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .warnings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
    fn take_logs(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .logs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
