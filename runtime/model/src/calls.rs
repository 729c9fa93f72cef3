//! What a flavor's calls are bounded by and answer with, as plain data: the sandbox
//! (`strata-sandbox`) lifts a call's answer into these, and the service and the API pass
//! them on.

/// The largest `.wasm` strata accepts. Compilation cannot be interrupted, so its input
/// is what bounds it (a Python flavor is ~18 MB).
pub const MAX_WASM_BYTES: usize = 64 * 1024 * 1024;

/// The bounds of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    pub max_return_bytes: u64,
}

impl Limits {
    /// Defaults for lifecycle calls: generous for real work, small enough that a
    /// runaway flavor is noticed quickly.
    pub const DEFAULT: Limits = Limits {
        timeout_ms: 10_000,
        memory_bytes: 256 * 1024 * 1024,
        max_return_bytes: 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A flavor's answer to `status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlavorStatus {
    pub provisioned: bool,
    pub running: bool,
    pub detail: String,
}

/// A file or directory in an artifact store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub is_dir: bool,
    pub modified_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// A step of a pipeline, as the pipeline file gives it. An orchestrator is handed its
/// name, upstream steps and parameters; never its command.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineStep {
    pub name: String,
    /// The shell command strata runs for the step (`sh -c`), in a clean working
    /// directory holding its inputs. A step without one only orders the steps around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Outputs of earlier steps this step reads, as `STEP.OUTPUT`; each implies an
    /// upstream step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Files the step writes in its working directory, stored in the artifact store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub upstream: Vec<String>,
    /// How long the command may run: `90s`, `10m`, `2h` (no bound when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Environment variables for the command.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchReport {
    pub orchestrator_run_id: String,
    pub schedule: Vec<Vec<String>>,
    pub detail: String,
}
