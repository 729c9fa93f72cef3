//! What the service answers and the REST API carries: the views of stacks, components,
//! flavors, secrets and integrations, lifecycle progress, and the reports of imports,
//! backups and pipeline runs. Plain data, so that a client needs nothing of the
//! service's own machinery (sled, wasmtime) to read them.

#![allow(unused_imports)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_model::calls::{FlavorStatus, LaunchReport, Limits, PipelineStep};
use strata_model::*;

/// The version of the export format this strata writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// A lifecycle call under way.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct InFlight {
    pub component_id: String,
    pub component_type: ComponentType,
    pub name: String,
    pub call: String,
}

/// What `init` did.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct InitReport {
    pub home: String,
    pub created: bool,
    pub builtins_registered: usize,
}

/// What `backup` or `restore` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupReport {
    pub file: String,
    pub records: usize,
    pub stacks: usize,
    pub components: usize,
    pub flavors: usize,
    pub secrets: usize,
    /// Set by `restore` when the secrets were sealed with another key.
    pub warning: Option<String>,
}

impl BackupReport {
    /// `16 records (2 stacks, 3 components, 2 flavors, 1 secrets)`.
    pub fn summary(&self) -> String {
        format!(
            "{} records ({} stacks, {} components, {} flavors, {} secrets)",
            self.records, self.stacks, self.components, self.flavors, self.secrets
        )
    }
}

/// A component as `list` and `describe` show it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub component_type: ComponentType,
    pub flavor: String,
    pub flavor_sha256: String,
    /// Configuration with defaults filled in; secret fields masked.
    pub config: Vec<ConfigValue>,
    /// Directories the sandbox grants the flavor.
    pub grants: Vec<GrantView>,
    /// Origins its `wasi:http` requests may reach.
    #[serde(default)]
    pub net: Vec<NetGrantView>,
    /// The service connector it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The deadline and memory cap of each call: the component's own, else its flavor's.
    pub timeout_ms: u64,
    pub memory_mb: u64,
    /// Which of them the component sets itself.
    pub own_limits: strata_model::LimitOverrides,
    pub phase: Phase,
    pub interrupted: bool,
    pub last_error: Option<LastError>,
    /// In the active stack.
    pub active: bool,
    /// The stacks that use it.
    pub stacks: Vec<String>,
    /// The flavor's own view, when asked for (`describe`).
    pub status: Option<Result<FlavorStatus, String>>,
}

impl ComponentView {
    /// A configuration value (with defaults filled in), e.g. an artifact store's `path`.
    pub fn config(&self, key: &str) -> Option<String> {
        self.config
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.clone())
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ConfigValue {
    pub key: String,
    pub value: String,
    pub default: bool,
}

/// Options of `flavor register`.
#[derive(Clone, Debug, Default)]
pub struct FlavorOptions {
    /// Wall-clock deadline of each call, instead of the default.
    pub timeout_ms: Option<u64>,
    /// Memory cap of each call in MiB, instead of the default.
    pub memory_mb: Option<u64>,
    /// Replace a custom flavor of the same name with this code.
    pub replace: bool,
    /// The extra origins the flavor declares (`flavor-info.origins`) that the user
    /// accepts: each must be given, or the registration is refused.
    pub allow_origins: Vec<String>,
}

/// A flavor as `flavor list` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct FlavorView {
    pub flavor: String,
    pub component_type: ComponentType,
    /// `built-in`, the integration it was installed with, or `custom`.
    pub integration: String,
    pub ready_to_use: bool,
    pub source: String,
    pub sha256: String,
    pub version: String,
    pub description: String,
    pub components: usize,
}

/// A flavor with its stored record (its schema, limits and requirements): what
/// `describe` shows and `-i` asks from.
#[derive(Clone, Debug)]
pub struct FlavorDetail {
    pub view: FlavorView,
    pub record: FlavorRecord,
}

/// An integration found on the search path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegrationView {
    pub name: String,
    pub path: String,
    /// Its `.wasm` files, by file name.
    pub files: Vec<IntegrationFile>,
    /// Every file is registered with exactly this code.
    pub installed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegrationFile {
    pub file: String,
    pub sha256: String,
    /// `type/flavor` of the registered flavor with this code, if any.
    pub registered_as: Option<String>,
}

/// What `integration install` did with each flavor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Installed {
    pub flavor: FlavorView,
    /// `installed`, `replaced` or `already installed`.
    pub outcome: String,
}

/// What happened to one component during `up` or `down`, reported as it happens.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Progress {
    pub component_type: ComponentType,
    pub name: String,
    /// `provision`, `resume`, `suspend`, `deprovision`, or `check` when nothing was needed.
    pub step: String,
    /// `outcome` (`started`, `done`, `unchanged`, `failed`) with `ms`, `detail` or
    /// `message`, at the same level as the fields above.
    #[serde(flatten)]
    pub outcome: StepOutcome,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum StepOutcome {
    Started,
    Done {
        ms: u64,
    },
    /// Nothing to do: `detail` says why.
    Unchanged {
        detail: String,
    },
    Failed {
        message: String,
    },
}

/// A directory a component's flavor may use, as `describe` shows it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GrantView {
    pub path: String,
    pub access: String,
    /// A missing directory is created by `up` before `provision`, then granted.
    pub exists: bool,
}

/// A pipeline definition, as read from YAML or JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub steps: Vec<PipelineStep>,
}

/// Where a pipeline run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    /// Stopped by Ctrl-C, `strata pipeline cancel` or the daemon stopping.
    Cancelled,
    /// strata was killed while it ran (found so by the next strata to open the home).
    Interrupted,
}

impl RunStatus {
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Where a step of a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Completed,
    /// Skipped: an earlier successful run on the same stack had the same command,
    /// environment, parameters and inputs; its outputs are this step's.
    Cached,
    Failed,
    /// Not run: an upstream step failed, or the run was cancelled before it started.
    Skipped,
    Cancelled,
    Interrupted,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Completed => "completed",
            StepStatus::Cached => "cached",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
        }
    }
}

/// An artifact a step wrote or read: a file in the run's artifact store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// As the pipeline names it: `data.csv` for an output, `load.data.csv` for an input.
    pub name: String,
    /// Its path in the artifact store: `runs/PIPELINE/RUN/STEP/OUTPUT`.
    pub key: String,
    /// Where it is, for a person or another tool (`/home/me/store/runs/…`, `s3://bucket/…`).
    pub uri: String,
    pub size: u64,
    /// sha256 of its bytes, hex.
    pub sha256: String,
}

/// One step of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRun {
    pub name: String,
    pub status: StepStatus,
    #[serde(default)]
    pub started_ms: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The run whose outputs a cached step reused.
    #[serde(default)]
    pub cached_from: Option<String>,
    #[serde(default)]
    pub inputs: Vec<ArtifactRef>,
    #[serde(default)]
    pub outputs: Vec<ArtifactRef>,
    /// Why it failed, was skipped or cancelled.
    #[serde(default)]
    pub error: Option<String>,
    /// The steps it runs after (those its inputs come from among them): the edges of the
    /// run's step graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
}

impl StepRun {
    /// One line on how it went: its error, the run its outputs came from, or how long
    /// it took (nothing while it runs).
    pub fn detail(&self) -> String {
        match (&self.error, &self.cached_from, self.duration_ms) {
            (Some(e), _, _) => e.clone(),
            (None, Some(from), _) => format!("outputs of run {from}"),
            (None, None, Some(ms)) if self.status != StepStatus::Running => {
                format!("in {}", strata_model::text::human_ms(ms))
            }
            _ => String::new(),
        }
    }
}

/// A pipeline run: what it was given, what each step did, and how it ended. Kept in the
/// home (`strata pipeline runs`), and the answer of `strata pipeline run`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub pipeline: String,
    pub stack: String,
    pub status: RunStatus,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    /// The directory of the pipeline file: `{{pipeline.dir}}`.
    #[serde(default)]
    pub dir: String,
    /// The runtime configuration given (`--param`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The artifact store the run's artifacts went to.
    #[serde(default)]
    pub artifact_store: String,
    /// The components that received the runtime configuration, in order.
    pub prepared: Vec<String>,
    pub orchestrator: String,
    /// What the orchestrator scheduled (empty until it did).
    pub launch: LaunchReport,
    pub steps: Vec<StepRun>,
    /// Why the run failed, was cancelled or interrupted.
    #[serde(default)]
    pub error: Option<String>,
    /// What the stack's experiment tracker and alerter did for the run.
    #[serde(default)]
    pub notices: Vec<String>,
    /// What flavors logged during the run.
    pub logs: Vec<String>,
}

/// One run in `strata pipeline runs list`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub stack: String,
    pub status: RunStatus,
    pub started_ms: u64,
    pub duration_ms: Option<u64>,
    pub steps: usize,
    pub cached: usize,
    pub failed: usize,
}

impl From<&RunReport> for RunSummary {
    fn from(r: &RunReport) -> RunSummary {
        let count = |s: StepStatus| r.steps.iter().filter(|x| x.status == s).count();
        RunSummary {
            run_id: r.run_id.clone(),
            pipeline: r.pipeline.clone(),
            stack: r.stack.clone(),
            status: r.status,
            started_ms: r.started_ms,
            duration_ms: r.ended_ms.map(|e| e.saturating_sub(r.started_ms)),
            steps: r.steps.len(),
            cached: count(StepStatus::Cached),
            failed: count(StepStatus::Failed),
        }
    }
}

/// The output of a step (its standard output and error, interleaved as they came; the
/// last [`STEP_LOG_BYTES`] kept), from byte `from` of everything it wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLog {
    pub step: String,
    pub text: String,
    /// How many bytes the step wrote in all: ask again `from` here for what comes next.
    pub next: u64,
    /// Whether bytes before what `text` holds were dropped (the head of a long log).
    pub truncated: bool,
    /// Whether the step still runs (more may come).
    pub live: bool,
}

/// The most bytes of a step's output strata keeps: the tail.
pub const STEP_LOG_BYTES: usize = 1024 * 1024;

/// A file or directory in an artifact store (`strata artifact-store put`, `stat`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtifactView {
    pub store: String,
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
    pub modified_ms: Option<u64>,
    pub elapsed_ms: u64,
}

/// One entry of `strata artifact-store ls`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtifactEntry {
    pub name: String,
    pub is_dir: bool,
}

/// What an alerter did with a message (`strata alerter post`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostReport {
    pub alerter: String,
    pub flavor: String,
    /// The flavor's one line: where the message went.
    pub detail: String,
    pub elapsed_ms: u64,
}

/// A secret as shown: values masked unless revealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretView {
    pub id: String,
    pub name: String,
    pub values: BTreeMap<String, String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A service connector as `service-connector list` and `describe` show it: its
/// settings, and the names of its credentials, never their values.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ConnectorView {
    pub id: String,
    pub name: String,
    /// `aws`, `bearer` or `basic`.
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: String,
    /// Settings a flavor may see (region, user name…), and each credential as `********`.
    pub values: BTreeMap<String, String>,
    /// The components bound to it, as `type/name`.
    pub used_by: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What `service-connector verify` found.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ConnectorCheck {
    pub name: String,
    pub ok: bool,
    /// The request made: `GET http://127.0.0.1:9000/`.
    pub request: String,
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// One line for a person.
    pub detail: String,
}

/// One origin a component's flavor may reach, and why.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct NetGrantView {
    /// `https://host:443`.
    pub origin: String,
    /// `field webhook`, `connector s3-dev`, `flavor (accepted at registration)`.
    pub from: String,
    /// The connector whose credential strata adds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A stack as `stack list` and `stack describe` show it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct StackView {
    pub id: String,
    pub name: String,
    pub active: bool,
    /// Components by type, in bring-up order.
    pub components: Vec<StackMember>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StackMember {
    pub component_type: ComponentType,
    pub name: String,
    pub flavor: String,
    pub phase: String,
    /// The service connector it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// The file `stack export` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackExport {
    /// Bumped when the layout changes; import refuses a newer one.
    pub format: u32,
    /// The strata that wrote the file.
    pub strata_version: String,
    pub stack: String,
    pub components: Vec<ExportedComponent>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedComponent {
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    pub name: String,
    pub flavor: ExportedFlavor,
    /// The values the user gave (defaults come from the flavor); secret references as
    /// written.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The component's own deadline and memory cap, if it sets them.
    #[serde(default, skip_serializing_if = "LimitOverrides::is_empty")]
    pub limits: LimitOverrides,
    /// The service connector it is bound to, by name and type (never its credentials):
    /// the importing home must have one of that name and type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<ExportedConnector>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedConnector {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedFlavor {
    pub name: String,
    /// sha256 of the flavor's `.wasm`, hex.
    pub sha256: String,
    /// `built-in`, or the path it was registered from.
    pub source: String,
}

/// What `stack import` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub stack: StackView,
    /// Components created by the import.
    pub created: Vec<String>,
    /// Components already registered with the same flavor and configuration, reused.
    pub reused: Vec<String>,
    /// Components whose name was taken by a different one: `(name in file, new name)`.
    pub renamed: Vec<(String, String)>,
    /// Flavors whose code differs from the file's, used anyway because of `--force`.
    pub forced: Vec<String>,
}

/// What a user of a team server may do everywhere (per-stack grants narrow `member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secret values and the audit log.
    Viewer,
    /// Registers flavors, components and stacks; uses the connectors granted to them;
    /// brings up the stacks it may (every stack without grants, and those granted).
    Member,
    /// Everything: users, tokens, service connectors, grants, the audit log, revealing
    /// secrets, running pipelines (their steps run on the server).
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user of a team server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub created_at_ms: u64,
    pub created_by: String,
    /// How many tokens the user holds.
    pub tokens: usize,
}

/// A token, as listed: never its secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub name: String,
    pub created_at_ms: u64,
}

/// A token just made: the only time its secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewToken {
    pub id: String,
    pub user: String,
    pub name: String,
    /// `strata_ID_SECRET`: give it to `strata login`; it cannot be shown again.
    pub token: String,
}

/// `strata whoami`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: String,
    pub role: Role,
    /// The server's address, as the client knows it (filled in by the client).
    #[serde(default)]
    pub server: String,
    /// `stack NAME: ROLE` and `connector NAME` for each grant the user holds.
    pub grants: Vec<String>,
}

/// One grant of a stack or a connector to a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessGrant {
    /// `stack` or `connector`.
    pub kind: String,
    pub name: String,
    pub user: String,
    /// `member` or `viewer` for a stack; `member` (may use it) for a connector.
    pub role: Role,
    pub granted_by: String,
    pub at_ms: u64,
}

/// One entry of a team server's audit log: a change someone asked for, and its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub user: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The server node that answered.
    pub node: String,
}
