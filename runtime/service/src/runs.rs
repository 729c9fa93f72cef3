//! Pipeline runs that execute: strata runs each step's command in the order the stack's
//! orchestrator scheduled, passes artifacts between steps through the stack's artifact
//! store flavor, skips steps whose inputs are unchanged (the cache), and keeps a record of
//! every run.
//!
//! The rule: **a flavor decides where and when, never what**. The orchestrator's `launch`
//! names steps in waves; strata runs the command the user's pipeline file gives for each
//! step, as the user, and nothing a flavor returns reaches a shell.
//!
//! Crash rules: a run is recorded (with an entry in [`TreeId::LiveRuns`]) before its first
//! call, every step's start and end is written as it happens, and the last write removes
//! the live entry. A home opened with a live entry left belonged to a strata that was
//! killed: [`Service::recover_runs`] marks that run, and its unfinished steps,
//! interrupted.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use crate::error::{Error, Result};
use crate::model::{ComponentType, Phase, now_ms};
use crate::store::{Batch, TreeId};

/// How a run is run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The directory of the pipeline file (absolute): `{{pipeline.dir}}`.
    pub dir: PathBuf,
    /// Steps of one wave that run at once.
    pub jobs: usize,
    /// Run every step, even one the cache could skip.
    pub no_cache: bool,
    /// Post to the stack's alerter when the run succeeds too (it always does on failure).
    pub notify: bool,
}

impl RunOptions {
    pub fn new(dir: PathBuf) -> RunOptions {
        RunOptions {
            dir,
            jobs: default_jobs(),
            no_cache: false,
            notify: false,
        }
    }
}

/// The cores of this machine: the default of `--jobs`.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// What happens during a run, as it happens, for the front end to show.
pub enum RunEvent<'a> {
    /// The run is recorded under this id.
    Started { run_id: &'a str },
    /// A step changed status (`detail`: its error, or how long it took).
    Step {
        step: &'a str,
        status: StepStatus,
        detail: &'a str,
    },
    /// A step wrote this to its standard output or error.
    Output { step: &'a str, text: &'a str },
}

/// Receives [`RunEvent`]s, from several steps' threads at once.
pub type Watch<'a> = &'a (dyn Fn(RunEvent<'_>) + Sync);

/// How often a running step's process is looked at, at most.
const POLL_MAX: Duration = Duration::from_millis(10);
/// How long a step stopped by a timeout or a cancel has after SIGTERM, before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// The longest `timeout` a step may have.
const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);
/// Prefix of the environment variables strata sets; a pipeline or a flavor may not.
const ENV_PREFIX: &str = "STRATA_";

/// A run under way in this process: how to cancel it, and its steps' output so far.
#[derive(Default)]
pub(crate) struct LiveRun {
    cancel: AtomicBool,
    why: Mutex<Option<String>>,
    logs: Mutex<HashMap<String, Arc<Mutex<Tail>>>>,
}

/// The last [`STEP_LOG_BYTES`] a step wrote, and how many it wrote in all.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
    total: u64,
}

impl Tail {
    fn push(&mut self, b: &[u8]) {
        self.total += b.len() as u64;
        self.bytes.extend(b);
        let excess = self.bytes.len().saturating_sub(STEP_LOG_BYTES);
        self.bytes.drain(..excess);
    }

    fn since(&self, step: &str, from: u64, live: bool) -> StepLog {
        let first = self.total - self.bytes.len() as u64;
        let skip = from.saturating_sub(first).min(self.bytes.len() as u64) as usize;
        let (a, b) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(self.bytes.len() - skip);
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        StepLog {
            step: step.to_string(),
            text: String::from_utf8_lossy(&all[skip..]).into_owned(),
            next: self.total,
            truncated: from < first,
            live,
        }
    }
}

/// A step's outputs, kept for the cache under the step's cache key.
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    run_id: String,
    outputs: Vec<ArtifactRef>,
}

/// A step of the pipeline, checked: its upstream steps include those its inputs imply.
struct Plan {
    step: crate::sandbox::calls::PipelineStep,
    timeout: Option<Duration>,
    /// `(step, output)` of each input.
    inputs: Vec<(String, String)>,
}

fn invalid(what: String, hint: &str) -> Error {
    Error::invalid(what, hint)
}

/// A name that becomes a part of an artifact's path: no `/`, `\`, `.` or `..` alone.
fn check_segment(what: &str, name: &str, also_dot: bool) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || (also_dot && name.contains('.'))
        || name.trim() != name
    {
        let dots = if also_dot { ", `.`" } else { "" };
        return Err(invalid(
            format!("{what} `{name}` cannot name a folder of the artifact store"),
            &format!(
                "use letters, digits, `-` and `_` (no `/`, `\\`{dots}, and no space at either end)"
            ),
        ));
    }
    Ok(())
}

/// `90s`, `10m`, `2h`, `500ms`.
fn parse_timeout(step: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        invalid(
            format!("step `{step}`: timeout `{text}` is not a duration"),
            "write it as a whole number and a unit: `500ms`, `90s`, `10m`, `2h`",
        )
    })?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(invalid(
                format!("step `{step}`: timeout `{text}` has no unit strata knows"),
                "write it as a whole number and a unit: `500ms`, `90s`, `10m`, `2h`",
            ));
        }
    };
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(invalid(
            format!("step `{step}`: timeout `{text}` is zero or longer than 30 days"),
            "give a duration from 1ms to 30 days, or leave `timeout` out for no bound",
        ));
    }
    Ok(d)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` as the tail of an environment variable: upper case, every other character `_`.
fn env_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What an experiment tracker may tell a step, after its one-word namespace (`MLFLOW_`
/// for a flavor named `mlflow`): where the run is, never how a program behaves. An
/// allowlist, because the names a loader, shell, interpreter or tool reads (`LD_PRELOAD`,
/// `GIT_SSH_COMMAND`, `JAVA_TOOL_OPTIONS`, `HTTPS_PROXY`, …) cannot all be listed.
pub const TRACKER_VARS: [&str; 11] = [
    "TRACKING_URI",
    "RUN_ID",
    "RUN_NAME",
    "EXPERIMENT_ID",
    "EXPERIMENT_NAME",
    "EXPERIMENT_KEY",
    "PROJECT",
    "ENTITY",
    "WORKSPACE",
    "BASE_URL",
    "URL",
];

/// A tracker's variable reaches the user's commands, outside the sandbox, so it may
/// neither change what runs nor send the step's data anywhere the user did not name:
/// its name is `WORD_SUFFIX`, where WORD is the first word of the flavor's name upper
/// cased (`MLFLOW` for `mlflow`, never `STRATA`) and SUFFIX one of [`TRACKER_VARS`]; its
/// value holds no NUL; and a `…_URI` or `…_URL`, or any value holding `://`, is a URL to
/// an origin the component is granted (its `url` fields, its connector).
fn check_tracker_var(
    flavor: &str,
    name: &str,
    value: &str,
    net: &crate::sandbox::net::NetGrants,
) -> std::result::Result<(), String> {
    let word = flavor
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let allowed = !word.is_empty()
        && word != "STRATA"
        && name
            .strip_prefix(&format!("{word}_"))
            .is_some_and(|suffix| TRACKER_VARS.contains(&suffix));
    if !allowed {
        return Err(format!(
            "a flavor named `{flavor}` may give only {}",
            TRACKER_VARS
                .iter()
                .map(|s| format!("`{word}_{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if value.contains('\0') {
        return Err("its value holds a NUL".into());
    }
    if name.ends_with("_URI") || name.ends_with("_URL") || value.contains("://") {
        let granted = crate::model::origin::Origin::of_url(value)
            .ok()
            .is_some_and(|o| net.origins.iter().any(|g| g.origin == o));
        if !granted {
            return Err(
                "its value is not a URL to an origin the component's configuration grants".into(),
            );
        }
    }
    Ok(())
}

/// Checks a pipeline as a whole, before anything runs: one clear error for each mistake.
/// Returns its steps with every upstream step their inputs imply.
fn plan(pipeline: &Pipeline) -> Result<Vec<Plan>> {
    check_segment("pipeline name", &pipeline.name, false)?;
    if pipeline.steps.is_empty() {
        return Err(invalid(
            format!("pipeline `{}` has no steps", pipeline.name),
            "list them under `steps:`, each with a `name` and the `run` command",
        ));
    }
    let mut seen = BTreeSet::new();
    for s in &pipeline.steps {
        check_segment("step name", &s.name, true)?;
        if !seen.insert(s.name.as_str()) {
            return Err(invalid(
                format!("two steps are named `{}`", s.name),
                "give every step its own name",
            ));
        }
    }
    let outputs_of: HashMap<&str, &Vec<String>> = pipeline
        .steps
        .iter()
        .map(|s| (s.name.as_str(), &s.outputs))
        .collect();
    let mut plans = Vec::new();
    for s in &pipeline.steps {
        let mut step = s.clone();
        if s.run.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(invalid(
                format!("step `{}` has an empty `run`", s.name),
                "give the command to run, or leave `run` out for a step that only orders others",
            ));
        }
        if s.run.is_none() && (!s.outputs.is_empty() || !s.inputs.is_empty()) {
            return Err(invalid(
                format!(
                    "step `{}` has inputs or outputs but no `run` command",
                    s.name
                ),
                "give the command that reads and writes them: `run: python3 train.py`",
            ));
        }
        let mut outs = BTreeSet::new();
        for o in &s.outputs {
            super::artifacts::check_path(o).map_err(|_| {
                invalid(
                    format!("step `{}`: output `{o}` is not a relative path", s.name),
                    "name a file the step writes in its working directory, like `model.pkl` or `reports/metrics.json`",
                )
            })?;
            if !outs.insert(o.as_str()) {
                return Err(invalid(
                    format!("step `{}` declares output `{o}` twice", s.name),
                    "list each output once",
                ));
            }
        }
        for a in &outs {
            if let Some(b) = outs.iter().find(|b| b.starts_with(&format!("{a}/"))) {
                return Err(invalid(
                    format!(
                        "step `{}`: outputs `{a}` and `{b}` collide (one would be a file and a folder)",
                        s.name
                    ),
                    "an output is a file: rename one of them",
                ));
            }
        }
        let mut inputs = Vec::new();
        let mut staged = BTreeMap::new();
        for i in &s.inputs {
            let Some((from, out)) = i.split_once('.') else {
                return Err(invalid(
                    format!(
                        "step `{}`: input `{i}` does not name a step's output",
                        s.name
                    ),
                    "write inputs as `STEP.OUTPUT`, like `load.data.csv`",
                ));
            };
            let Some(produced) = outputs_of.get(from) else {
                return Err(invalid(
                    format!(
                        "step `{}`: input `{i}` names step `{from}`, which the pipeline does not have",
                        s.name
                    ),
                    "write inputs as `STEP.OUTPUT` with a step of this pipeline",
                ));
            };
            if !produced.iter().any(|o| o == out) {
                return Err(invalid(
                    format!(
                        "step `{}`: input `{i}`: step `{from}` has no output `{out}` (it declares: {})",
                        s.name,
                        if produced.is_empty() {
                            "none".to_string()
                        } else {
                            produced.join(", ")
                        }
                    ),
                    "add it to that step's `outputs`, or fix the input's name",
                ));
            }
            if from == s.name {
                return Err(invalid(
                    format!("step `{}` reads its own output `{out}`", s.name),
                    "an input comes from an earlier step",
                ));
            }
            if let Some(other) = staged.insert(out.to_string(), i.clone()) {
                return Err(invalid(
                    format!(
                        "step `{}`: inputs `{other}` and `{i}` would both be `{out}` in its working directory",
                        s.name
                    ),
                    "rename one of the two outputs",
                ));
            }
            if !step.upstream.iter().any(|u| u == from) {
                step.upstream.push(from.to_string());
            }
            inputs.push((from.to_string(), out.to_string()));
        }
        for u in &s.upstream {
            if !seen.contains(u.as_str()) {
                return Err(invalid(
                    format!(
                        "step `{}` names upstream step `{u}`, which the pipeline does not have",
                        s.name
                    ),
                    "name steps of this pipeline in `upstream`",
                ));
            }
            if u == &s.name {
                return Err(invalid(
                    format!("step `{}` names itself upstream", s.name),
                    "a step cannot wait for itself",
                ));
            }
        }
        let mut vars = BTreeMap::new();
        for (kind, name) in s
            .outputs
            .iter()
            .map(|o| ("OUTPUT", o.as_str()))
            .chain(s.inputs.iter().map(|i| ("INPUT", i.as_str())))
        {
            let var = format!("STRATA_{kind}_{}", env_part(name));
            if let Some(other) = vars.insert(var.clone(), name) {
                return Err(invalid(
                    format!(
                        "step `{}`: `{other}` and `{name}` would both be `${var}`",
                        s.name
                    ),
                    "rename one of them (a character other than a letter or digit becomes `_`)",
                ));
            }
        }
        let texts = s
            .run
            .iter()
            .chain(s.env.values())
            .chain(s.parameters.values());
        if texts.into_iter().any(|t| t.contains('\0')) {
            return Err(invalid(
                format!(
                    "step `{}` holds a NUL character in its `run`, `env` or `parameters`",
                    s.name
                ),
                "remove it: a command or variable cannot hold one",
            ));
        }
        for k in s.env.keys() {
            if !is_env_name(k) || k.starts_with(ENV_PREFIX) {
                return Err(invalid(
                    format!(
                        "step `{}`: `{k}` cannot be an environment variable of a step",
                        s.name
                    ),
                    "use letters, digits and `_`, not starting with a digit or `STRATA_` (strata's own)",
                ));
            }
        }
        let timeout = s
            .timeout
            .as_deref()
            .map(|t| parse_timeout(&s.name, t))
            .transpose()?;
        plans.push(Plan {
            step,
            timeout,
            inputs,
        });
    }
    // A cycle: depth-first, naming the steps around it.
    let index: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.step.name.as_str(), i))
        .collect();
    let mut mark = vec![0u8; plans.len()];
    fn visit(
        i: usize,
        plans: &[Plan],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> std::result::Result<(), Vec<usize>> {
        if mark[i] == 2 {
            return Ok(());
        }
        if mark[i] == 1 {
            let start = path.iter().position(|&p| p == i).unwrap_or(0);
            let mut cycle = path[start..].to_vec();
            cycle.push(i);
            return Err(cycle);
        }
        mark[i] = 1;
        path.push(i);
        for u in &plans[i].step.upstream {
            visit(index[u.as_str()], plans, index, mark, path)?;
        }
        path.pop();
        mark[i] = 2;
        Ok(())
    }
    for i in 0..plans.len() {
        if let Err(cycle) = visit(i, &plans, &index, &mut mark, &mut Vec::new()) {
            let names: Vec<&str> = cycle.iter().map(|&c| plans[c].step.name.as_str()).collect();
            return Err(invalid(
                format!(
                    "the steps wait for each other in a cycle: {}",
                    names.join(" → ")
                ),
                "remove one of these `upstream` (or `inputs`) links",
            ));
        }
    }
    Ok(plans)
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The step's command with `{{param.NAME}}` and `{{pipeline.dir}}` replaced (each value
/// quoted as one shell word), and the files of the pipeline's directory it names as
/// `{{pipeline.dir}}/PATH`.
fn substitute(
    step: &str,
    command: &str,
    params: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<(String, Vec<String>)> {
    let mut out = String::with_capacity(command.len());
    let mut files = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find("}}") else {
            return Err(invalid(
                format!("step `{step}`: `{{{{` in its command is never closed"),
                "write placeholders as `{{param.NAME}}` or `{{pipeline.dir}}`",
            ));
        };
        let name = after[..end].trim();
        rest = &after[end + 2..];
        if name == "pipeline.dir" {
            out.push_str(&shell_quote(&dir.display().to_string()));
            let file: String = rest
                .strip_prefix('/')
                .unwrap_or_default()
                .chars()
                .take_while(|c| !c.is_whitespace() && !"'\";|&()<>`$".contains(*c))
                .collect();
            // `{{pipeline.dir}}` alone (`cd {{pipeline.dir}} && …`): the whole folder.
            files.push(file);
        } else if let Some(p) = name.strip_prefix("param.") {
            let Some(v) = params.get(p) else {
                return Err(invalid(
                    format!(
                        "step `{step}` uses `{{{{param.{p}}}}}`, but the run has no parameter `{p}`"
                    ),
                    &format!(
                        "give it: `strata pipeline run FILE --param {p}=VALUE`, or set it in the step's `parameters`"
                    ),
                ));
            };
            out.push_str(&shell_quote(v));
        } else {
            return Err(invalid(
                format!(
                    "step `{step}`: `{{{{{name}}}}}` in its command is not a placeholder strata knows"
                ),
                "use `{{param.NAME}}` (a parameter) or `{{pipeline.dir}}` (the pipeline file's directory)",
            ));
        }
    }
    out.push_str(rest);
    Ok((out, files))
}

/// sha256 of a file of the pipeline's directory, for the cache (a folder: of every file
/// in it, by relative path; a missing one: `missing`).
fn hash_source(dir: &Path, rel: &str) -> String {
    fn walk(p: &Path, base: &Path, h: &mut Sha256, budget: &mut usize) {
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        if meta.is_dir() {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            names.sort();
            for n in names {
                walk(&n, base, h, budget);
            }
        } else if let Ok(mut f) = std::fs::File::open(p) {
            h.update(
                p.strip_prefix(base)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .as_bytes(),
            );
            h.update([0]);
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
    }
    let path = if rel.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    };
    if !path.exists() {
        return "missing".into();
    }
    let mut h = Sha256::new();
    let mut budget = 10_000;
    walk(&path, &path, &mut h, &mut budget);
    if budget == 0 {
        // Too many files to hash: the step is never taken from the cache.
        return format!("uncacheable {}", super::new_id());
    }
    hex::encode(h.finalize())
}

/// Where an artifact is, for a person: a local store's folder, an S3 URL, else a URI
/// naming the store.
fn artifact_uri(store: &crate::model::ComponentRecord, key: &str) -> String {
    if let Some(p) = store.config.get("path") {
        return format!("{}/{key}", p.trim_end_matches('/'));
    }
    if let Some(b) = store.config.get("bucket") {
        let prefix = store
            .config
            .get("prefix")
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        return format!("s3://{b}/{prefix}{key}");
    }
    format!("strata-artifact-store://{}/{key}", store.name)
}

/// Stops the process group `pgid`: SIGTERM, then SIGKILL after `grace` if it still runs.
fn stop_group(child: &mut std::process::Child, grace: Duration) {
    let pgid = child.id() as i32;
    // SAFETY: kill(2) with a negative pid signals the group the step leads; no memory
    // is shared with the callee.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// What the run needs while its steps run.
struct Ctx<'a> {
    svc: &'a Service,
    run: Mutex<RunReport>,
    live: Arc<LiveRun>,
    store: Option<crate::model::ComponentRecord>,
    opts: &'a RunOptions,
    /// Every parameter: the runtime's, for `{{param.…}}` and `STRATA_PARAM_…`.
    params: BTreeMap<String, String>,
    /// What the stack's experiment trackers publish for steps.
    tracker_env: Vec<(String, String)>,
    watch: Watch<'a>,
}

impl Ctx<'_> {
    fn save(&self, done: bool) -> Result<()> {
        let run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch::new();
        batch.put(TreeId::Runs, &run.run_id, &*run);
        if done {
            batch.remove(TreeId::LiveRuns, &run.run_id);
        }
        self.svc.store.apply(batch)
    }

    fn update(&self, step: &str, f: impl FnOnce(&mut StepRun)) {
        let mut run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = run.steps.iter_mut().find(|s| s.name == step) {
            f(s);
        }
    }

    fn step(&self, step: &str) -> StepRun {
        let run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        run.steps
            .iter()
            .find(|s| s.name == step)
            .cloned()
            .expect("invariant: every planned step has a record")
    }

    fn cancelled(&self) -> bool {
        self.live.cancel.load(Ordering::SeqCst)
    }

    /// Records `step`'s end and tells the watcher.
    fn end(&self, step: &str, status: StepStatus, error: Option<String>, started: Option<Instant>) {
        self.update(step, |s| {
            s.status = status;
            s.error = error.clone();
            if let Some(t) = started {
                s.duration_ms = Some(t.elapsed().as_millis() as u64);
            }
        });
        if let Err(e) = self.save(false) {
            self.svc
                .warn(format!("could not record step `{step}`: {e}"));
        }
        let detail = self.step(step).detail();
        (self.watch)(RunEvent::Step {
            step,
            status,
            detail: &detail,
        });
    }
}

impl Service {
    /// Marks interrupted every run a killed strata left under way (see the module).
    pub(crate) fn recover_runs(&self) -> Result<()> {
        // Each entry names the team server node running it (`None` on a local home): a
        // node starting recovers its own runs, never another node's, under way.
        let live: Vec<(String, Option<String>)> =
            self.store.scan(TreeId::LiveRuns, "").unwrap_or_default();
        let me = self.shared.team.as_ref().map(|t| t.node.clone());
        for (id, node) in live {
            if node != me {
                continue;
            }
            let mut batch = Batch::new();
            let record = match self.store.get::<RunReport>(TreeId::Runs, &id) {
                Ok(r) => r,
                Err(e) => {
                    // A record this strata cannot read must not keep the home closed.
                    self.warn(format!(
                        "run {id} was interrupted, and its record cannot be read: {e}"
                    ));
                    None
                }
            };
            if let Some(mut r) = record {
                if r.status == RunStatus::Running {
                    r.status = RunStatus::Interrupted;
                    r.ended_ms.get_or_insert(now_ms());
                    r.error.get_or_insert_with(|| {
                        "strata ended while the run was under way (killed, or the machine stopped); run the pipeline again: the cache skips the steps that completed".into()
                    });
                    for s in &mut r.steps {
                        if matches!(s.status, StepStatus::Running | StepStatus::Pending) {
                            s.status = StepStatus::Interrupted;
                        }
                    }
                }
                batch.put(TreeId::Runs, &id, &r);
            }
            batch.remove(TreeId::LiveRuns, &id);
            self.store.apply(batch)?;
        }
        Ok(())
    }

    /// Runs `pipeline` on the active stack: the runtime configuration goes to every
    /// component (`prepare-pipeline-deployment`, orchestrator last), the orchestrator
    /// schedules the steps (`launch`), and strata runs them. The record is kept whatever
    /// happens; an error before the first step is returned as an error, a failed step is
    /// a report whose status is `failed`.
    pub fn pipeline_run_with(
        &self,
        pipeline: &Pipeline,
        runtime: BTreeMap<String, String>,
        opts: &RunOptions,
        watch: Watch<'_>,
    ) -> Result<RunReport> {
        if pipeline.name.trim().is_empty() {
            return Err(Error::invalid(
                "the pipeline has no name",
                "give it `name: my_pipeline`",
            ));
        }
        super::pipeline::check_names(pipeline, &runtime)?;
        let plans = plan(pipeline)?;
        if !opts.dir.is_absolute() {
            return Err(Error::invalid(
                format!("`{}` is not an absolute path", opts.dir.display()),
                "give the pipeline file's directory as an absolute path",
            ));
        }
        let jobs = opts.jobs.max(1);
        if let Some((k, _)) = runtime.iter().find(|(_, v)| v.contains('\0')) {
            return Err(Error::invalid(
                format!("runtime parameter `{k}` holds a NUL character"),
                "remove it: a command or variable cannot hold one",
            ));
        }
        let stack_name = self.stack_get()?;
        let stack = self.stack_or_err(&stack_name)?;
        self.check_stack(&stack)?;
        // Every command is complete before anything runs: a missing parameter is an
        // error now, not after an hour of training.
        for p in &plans {
            if let Some(cmd) = &p.step.run {
                let mut params = runtime.clone();
                params.extend(p.step.parameters.clone());
                substitute(&p.step.name, cmd, &params, &opts.dir)?;
            }
        }
        let store_name = stack
            .components
            .get(&ComponentType::ArtifactStore)
            .and_then(|n| n.first())
            .cloned()
            .unwrap_or_default();
        let moves_artifacts = plans.iter().any(|p| !p.step.outputs.is_empty());
        let store = if moves_artifacts {
            let c = self.component_or_err(ComponentType::ArtifactStore, &store_name)?;
            let up = self
                .store
                .state(&c.id)?
                .is_some_and(|s| matches!(s.phase, Phase::Provisioned | Phase::Running));
            if !up {
                return Err(Error::invalid(
                    format!(
                        "artifact store `{store_name}` of stack `{stack_name}` is not up, and the steps' outputs go there"
                    ),
                    "bring the stack up first: `strata stack up`",
                ));
            }
            Some(c)
        } else {
            None
        };

        let run_id = super::new_id();
        let live = Arc::new(LiveRun::default());
        let run = RunReport {
            run_id: run_id.clone(),
            pipeline: pipeline.name.clone(),
            stack: stack_name.clone(),
            status: RunStatus::Running,
            started_ms: now_ms(),
            ended_ms: None,
            dir: opts.dir.display().to_string(),
            params: runtime.clone(),
            artifact_store: store_name,
            prepared: Vec::new(),
            orchestrator: String::new(),
            launch: Default::default(),
            steps: plans
                .iter()
                .map(|p| StepRun {
                    name: p.step.name.clone(),
                    status: StepStatus::Pending,
                    started_ms: None,
                    duration_ms: None,
                    exit_code: None,
                    cached_from: None,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    error: None,
                    upstream: p.step.upstream.clone(),
                })
                .collect(),
            error: None,
            notices: Vec::new(),
            logs: Vec::new(),
        };
        let mut batch = Batch::new();
        batch.put(TreeId::Runs, &run_id, &run);
        batch.put(
            TreeId::LiveRuns,
            &run_id,
            &self.shared.team.as_ref().map(|t| t.node.clone()),
        );
        self.store.apply(batch)?;
        self.shared
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id.clone(), live.clone());
        watch(RunEvent::Started { run_id: &run_id });
        let ctx = Ctx {
            svc: self,
            run: Mutex::new(run),
            live,
            store,
            opts,
            params: runtime.clone(),
            tracker_env: Vec::new(),
            watch,
        };
        // Forgotten as under way here when it ends, even by a panic.
        struct Forget<'a>(&'a Service, String);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0
                    .shared
                    .runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&self.1);
            }
        }
        let _forget = Forget(self, run_id);
        self.execute(ctx, &plans, &stack, runtime, jobs)
    }

    fn execute(
        &self,
        mut ctx: Ctx<'_>,
        plans: &[Plan],
        stack: &crate::model::StackRecord,
        runtime: BTreeMap<String, String>,
        jobs: usize,
    ) -> Result<RunReport> {
        let run_id = ctx.run.lock().unwrap().run_id.clone();
        let steps: Vec<_> = plans.iter().map(|p| p.step.clone()).collect();
        let pipeline = super::Pipeline {
            name: ctx.run.lock().unwrap().pipeline.clone(),
            steps,
        };
        // Prepare and launch: an error there ends the run before its first step.
        let launched = self
            .prepare_and_launch(&pipeline, runtime, &run_id, stack)
            .and_then(|(prepared, orchestrator, launch, logs)| {
                {
                    let mut r = ctx.run.lock().unwrap();
                    r.prepared = prepared;
                    r.orchestrator = orchestrator;
                    r.launch = launch;
                    r.logs = logs;
                }
                ctx.save(false)?;
                self.tracker_environment(stack, &run_id)
            });
        let schedule = match launched {
            Ok(env) => {
                ctx.tracker_env = env;
                ctx.run.lock().unwrap().launch.schedule.clone()
            }
            Err(e) => {
                let message = e.to_string();
                {
                    let mut r = ctx.run.lock().unwrap();
                    r.status = RunStatus::Failed;
                    r.error = Some(message.clone());
                    for s in &mut r.steps {
                        s.status = StepStatus::Skipped;
                        s.error = Some("the run failed before its first step".into());
                    }
                }
                self.finish(&ctx, stack, None);
                return Err(e);
            }
        };
        let by_name: HashMap<&str, &Plan> =
            plans.iter().map(|p| (p.step.name.as_str(), p)).collect();
        for wave in &schedule {
            let slots = Mutex::new(jobs);
            let freed = std::sync::Condvar::new();
            std::thread::scope(|scope| {
                for name in wave {
                    let plan = by_name[name.as_str()];
                    let (ctx, slots, freed) = (&ctx, &slots, &freed);
                    scope.spawn(move || {
                        {
                            let mut n = slots.lock().unwrap();
                            while *n == 0 {
                                n = freed.wait(n).unwrap();
                            }
                            *n -= 1;
                        }
                        self.run_pipeline_step(ctx, plan);
                        *slots.lock().unwrap() += 1;
                        freed.notify_one();
                    });
                }
            });
        }
        let failed = {
            let r = ctx.run.lock().unwrap();
            r.steps
                .iter()
                .find(|s| s.status == StepStatus::Failed)
                .map(|s| (s.name.clone(), s.error.clone().unwrap_or_default()))
        };
        {
            let mut r = ctx.run.lock().unwrap();
            if ctx.live.cancel.load(Ordering::SeqCst) {
                r.status = RunStatus::Cancelled;
                r.error = Some(
                    ctx.live
                        .why
                        .lock()
                        .unwrap()
                        .clone()
                        .unwrap_or_else(|| "cancelled".into()),
                );
            } else if let Some((step, why)) = &failed {
                r.status = RunStatus::Failed;
                r.error = Some(format!("step `{step}` failed: {why}"));
            } else {
                r.status = RunStatus::Completed;
            }
        }
        self.finish(&ctx, stack, failed.as_ref().map(|(s, _)| s.as_str()));
        Ok(ctx.run.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// The end of a run: its trackers close their runs, its alerter posts (on failure,
    /// or always with `--notify`), and the record is written a last time.
    fn finish(&self, ctx: &Ctx<'_>, stack: &crate::model::StackRecord, failed_step: Option<&str>) {
        let (run_id, status, pipeline, error) = {
            let mut r = ctx.run.lock().unwrap();
            r.ended_ms = Some(now_ms());
            (
                r.run_id.clone(),
                r.status,
                r.pipeline.clone(),
                r.error.clone(),
            )
        };
        let mut notices = Vec::new();
        for name in stack
            .components
            .get(&ComponentType::ExperimentTracker)
            .into_iter()
            .flatten()
        {
            match self.tracker_finish(name, &run_id, status) {
                Ok(Some(line)) => notices.push(format!("experiment tracker `{name}`: {line}")),
                Ok(None) => {}
                Err(e) => notices.push(format!(
                    "experiment tracker `{name}` could not close its run: {e}"
                )),
            }
        }
        let post = status != RunStatus::Completed || ctx.opts.notify;
        if post {
            for name in stack
                .components
                .get(&ComponentType::Alerter)
                .into_iter()
                .flatten()
            {
                let level = match status {
                    RunStatus::Completed => "success",
                    RunStatus::Cancelled => "warning",
                    _ => "error",
                };
                let text = match (&error, status) {
                    (Some(e), _) => format!(
                        "Run {run_id} of pipeline `{pipeline}` {}: {e}",
                        status.label()
                    ),
                    (None, _) => {
                        format!("Run {run_id} of pipeline `{pipeline}` {}.", status.label())
                    }
                };
                let mut params = BTreeMap::from([
                    (
                        "title".to_string(),
                        format!("strata: pipeline `{pipeline}` {}", status.label()),
                    ),
                    ("level".to_string(), level.to_string()),
                    ("pipeline".to_string(), pipeline.clone()),
                    ("run-id".to_string(), run_id.clone()),
                    ("stack".to_string(), stack.name.clone()),
                ]);
                if let Some(s) = failed_step {
                    params.insert("step".into(), s.to_string());
                }
                let text: String = text
                    .chars()
                    .take(super::alerts::MAX_MESSAGE_CHARS)
                    .collect();
                match self.alerter_post(name, &text, params) {
                    Ok(r) => notices.push(format!("alerter `{name}`: {}", r.detail)),
                    Err(e) => notices.push(format!("alerter `{name}` could not post: {e}")),
                }
            }
        }
        for n in &notices {
            (ctx.watch)(RunEvent::Output { step: "", text: n });
        }
        ctx.run.lock().unwrap().notices = notices;
        if let Err(e) = ctx.save(true) {
            self.warn(format!("could not record the end of run {run_id}: {e}"));
        }
    }

    /// The variables the stack's experiment trackers give every step of `run_id`.
    fn tracker_environment(
        &self,
        stack: &crate::model::StackRecord,
        run_id: &str,
    ) -> Result<Vec<(String, String)>> {
        let mut env = Vec::new();
        let t = ComponentType::ExperimentTracker;
        for name in stack.components.get(&t).into_iter().flatten() {
            let vars = self.as_call(t, name, "step-environment", |c| {
                let b = self.bind(c, false)?;
                if !b.loaded.exports_experiment_tracker() {
                    return Ok(Vec::new());
                }
                let subject = format!("{} `{}` (flavor `{}`)", t.label(), c.name, b.f.info.name);
                let called = b.target(self.sandbox()?).step_environment(&b.ctx, run_id)?;
                let vars = self.flavor_value(&subject, "step-environment", called)?;
                for (k, v) in &vars {
                    if let Err(why) = check_tracker_var(&b.f.info.name, k, v, &b.grants.net) {
                        return Err(Error::Flavor {
                            subject,
                            call: "step-environment".into(),
                            message: format!(
                                "it gave the steps the variable `{}`, which strata refuses: {why}",
                                k.escape_debug()
                            ),
                        });
                    }
                }
                Ok(vars)
            })?;
            env.extend(vars);
        }
        Ok(env)
    }

    /// Closes tracker `name`'s run: its line, or `None` when its flavor has no
    /// `finish-run` (built against the `flavor` world).
    fn tracker_finish(
        &self,
        name: &str,
        run_id: &str,
        status: RunStatus,
    ) -> Result<Option<String>> {
        let t = ComponentType::ExperimentTracker;
        let status = match status {
            RunStatus::Completed => "completed",
            RunStatus::Cancelled => "cancelled",
            _ => "failed",
        };
        self.as_call(t, name, "finish-run", |c| {
            let b = self.bind(c, false)?;
            if !b.loaded.exports_experiment_tracker() {
                return Ok(None);
            }
            let subject = format!("{} `{}` (flavor `{}`)", t.label(), c.name, b.f.info.name);
            let called = b
                .target(self.sandbox()?)
                .finish_run(&b.ctx, run_id, status)?;
            self.flavor_value(&subject, "finish-run", called).map(Some)
        })
    }

    /// One step, start to end; its record says how it went.
    fn run_pipeline_step(&self, ctx: &Ctx<'_>, plan: &Plan) {
        let name = plan.step.name.as_str();
        if ctx.cancelled() {
            ctx.end(
                name,
                StepStatus::Skipped,
                Some("the run was cancelled before it started".into()),
                None,
            );
            return;
        }
        let blocked = {
            let r = ctx.run.lock().unwrap();
            plan.step.upstream.iter().find_map(|u| {
                r.steps
                    .iter()
                    .find(|s| &s.name == u)
                    .filter(|s| !matches!(s.status, StepStatus::Completed | StepStatus::Cached))
                    .map(|s| (u.clone(), s.status))
            })
        };
        if let Some((u, status)) = blocked {
            let why = match status {
                StepStatus::Failed => format!("upstream step `{u}` failed"),
                _ => format!("upstream step `{u}` did not run"),
            };
            ctx.end(name, StepStatus::Skipped, Some(why), None);
            return;
        }
        let Some(command) = &plan.step.run else {
            ctx.end(name, StepStatus::Completed, None, Some(Instant::now()));
            return;
        };
        let started = Instant::now();
        let outcome = self.run_command(ctx, plan, command, started);
        match outcome {
            Ok(status) => ctx.end(name, status, None, Some(started)),
            Err((status, why)) => ctx.end(name, status, Some(why), Some(started)),
        }
    }

    /// Stages the inputs, looks in the cache, runs the command and stores the outputs.
    fn run_command(
        &self,
        ctx: &Ctx<'_>,
        plan: &Plan,
        command: &str,
        started: Instant,
    ) -> std::result::Result<StepStatus, (StepStatus, String)> {
        let name = plan.step.name.as_str();
        let failed = |e: String| (StepStatus::Failed, e);
        let (run_id, pipeline, stack) = {
            let r = ctx.run.lock().unwrap();
            (r.run_id.clone(), r.pipeline.clone(), r.stack.clone())
        };
        let mut params = ctx.params.clone();
        params.extend(plan.step.parameters.clone());
        let (command, mut files) =
            substitute(name, command, &params, &ctx.opts.dir).map_err(|e| failed(e.to_string()))?;
        if command.contains("STRATA_PIPELINE_DIR") {
            // The command finds its files itself: the whole folder is part of its key.
            files.push(String::new());
        }
        files.sort();
        files.dedup();
        let inputs: Vec<ArtifactRef> = {
            let r = ctx.run.lock().unwrap();
            plan.inputs
                .iter()
                .map(|(from, out)| {
                    let mut a = r
                        .steps
                        .iter()
                        .find(|s| &s.name == from)
                        .and_then(|s| s.outputs.iter().find(|o| &o.name == out))
                        .cloned()
                        .expect("invariant: an upstream step that completed stored its outputs");
                    a.name = format!("{from}.{out}");
                    a
                })
                .collect()
        };
        ctx.update(name, |s| s.inputs = inputs.clone());
        // The cache key: what decides the outputs.
        let key = {
            let mut h = Sha256::new();
            let doc = serde_json::json!({
                "v": 1,
                "store": ctx.store.as_ref().map(|c| &c.id),
                "command": command,
                "env": plan.step.env,
                "params": params,
                "inputs": inputs.iter().map(|i| (&i.name, &i.sha256)).collect::<Vec<_>>(),
                "outputs": plan.step.outputs,
                "files": files.iter().map(|f| (f, hash_source(&ctx.opts.dir, f))).collect::<Vec<_>>(),
            });
            h.update(doc.to_string().as_bytes());
            format!("{stack}/{pipeline}/{name}/{}", hex::encode(h.finalize()))
        };
        let store = ctx.store.as_ref();
        if !ctx.opts.no_cache
            && let Some(hit) = self.cache_hit(&key, store)
        {
            ctx.update(name, |s| {
                s.cached_from = Some(hit.run_id.clone());
                s.outputs = hit.outputs.clone();
                s.started_ms = Some(now_ms());
            });
            return Ok(StepStatus::Cached);
        }
        ctx.update(name, |s| {
            s.status = StepStatus::Running;
            s.started_ms = Some(now_ms());
        });
        let _ = ctx.save(false);
        (ctx.watch)(RunEvent::Step {
            step: name,
            status: StepStatus::Running,
            detail: "",
        });
        let work = self.home.root().join("runs").join(&run_id).join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| {
            failed(format!(
                "cannot create its working directory `{}`: {e}",
                work.display()
            ))
        })?;
        let result = self.run_in(ctx, plan, &command, &work, &inputs, &run_id, started);
        let result = result.and_then(|()| {
            let mut outputs = Vec::new();
            for o in &plan.step.outputs {
                let path = work.join(o);
                let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file());
                let Some(meta) = meta else {
                    return Err(failed(format!(
                        "it did not write its output `{o}` (a file in its working directory; `$STRATA_OUTPUT_{}` names it)",
                        env_part(o)
                    )));
                };
                if meta.len() > super::MAX_ARTIFACT_BYTES {
                    return Err(failed(format!(
                        "its output `{o}` is {} bytes, more than the {} strata moves through an artifact store",
                        meta.len(),
                        super::MAX_ARTIFACT_BYTES
                    )));
                }
                let bytes = std::fs::read(&path).map_err(|e| failed(format!("cannot read its output `{o}`: {e}")))?;
                let store = store.expect("invariant: a run with outputs has a store");
                let key = format!("runs/{pipeline}/{run_id}/{name}/{o}");
                self.artifact_put(&store.name, &key, &bytes, true)
                    .map_err(|e| failed(format!("storing its output `{o}`: {e}")))?;
                outputs.push(ArtifactRef {
                    name: o.clone(),
                    uri: artifact_uri(store, &key),
                    key,
                    size: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                });
            }
            ctx.update(name, |s| s.outputs = outputs.clone());
            let mut batch = Batch::new();
            batch.put(
                TreeId::RunCache,
                &key,
                &CacheEntry {
                    run_id: run_id.clone(),
                    outputs,
                },
            );
            self.store.apply(batch).map_err(|e| failed(e.to_string()))
        });
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir(work.parent().expect("invariant: under the run's folder"));
        result.map(|()| StepStatus::Completed)
    }

    /// The outputs the cache holds for `key`, if every one is still in the store.
    fn cache_hit(
        &self,
        key: &str,
        store: Option<&crate::model::ComponentRecord>,
    ) -> Option<CacheEntry> {
        let hit: CacheEntry = self.store.get(TreeId::RunCache, key).ok()??;
        for o in &hit.outputs {
            let st = self.artifact_stat(&store?.name, &o.key).ok()?;
            if st.size != o.size {
                return None;
            }
        }
        Some(hit)
    }

    /// Stages the inputs in `work`, runs the command there, and waits for it.
    #[allow(clippy::too_many_arguments)]
    fn run_in(
        &self,
        ctx: &Ctx<'_>,
        plan: &Plan,
        command: &str,
        work: &Path,
        inputs: &[ArtifactRef],
        run_id: &str,
        started: Instant,
    ) -> std::result::Result<(), (StepStatus, String)> {
        let name = plan.step.name.as_str();
        let failed = |e: String| (StepStatus::Failed, e);
        let store = ctx.store.as_ref();
        // What the tracker gives comes first: strata's own variables, and the step's
        // `env`, are set after it and win.
        let mut env: Vec<(String, String)> = ctx.tracker_env.clone();
        env.extend([
            ("STRATA_RUN_ID".into(), run_id.to_string()),
            ("STRATA_STEP".into(), name.to_string()),
            (
                "STRATA_PIPELINE_DIR".into(),
                ctx.opts.dir.display().to_string(),
            ),
            ("STRATA_WORK_DIR".into(), work.display().to_string()),
        ]);
        {
            let r = ctx.run.lock().unwrap();
            env.push(("STRATA_PIPELINE".into(), r.pipeline.clone()));
            env.push(("STRATA_STACK".into(), r.stack.clone()));
            env.push(("STRATA_ARTIFACT_STORE".into(), r.artifact_store.clone()));
        }
        let mut params = ctx.params.clone();
        params.extend(plan.step.parameters.clone());
        for (k, v) in &params {
            env.push((format!("STRATA_PARAM_{}", env_part(k)), v.clone()));
        }
        for i in inputs {
            let file = i.name.split_once('.').map_or(i.name.as_str(), |(_, o)| o);
            let path = work.join(file);
            let bytes = self
                .artifact_get(
                    &store.expect("invariant: inputs come from a store").name,
                    &i.key,
                )
                .map_err(|e| failed(format!("reading its input `{}`: {e}", i.name)))?;
            if hex::encode(Sha256::digest(&bytes)) != i.sha256 {
                return Err(failed(format!(
                    "its input `{}` changed in the artifact store since step `{}` wrote it; run the pipeline again with --no-cache to write it anew",
                    i.name,
                    i.name.split('.').next().unwrap_or_default()
                )));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| failed(format!("staging `{}`: {e}", i.name)))?;
            }
            std::fs::write(&path, &bytes)
                .map_err(|e| failed(format!("staging `{}`: {e}", i.name)))?;
            env.push((
                format!("STRATA_INPUT_{}", env_part(&i.name)),
                path.display().to_string(),
            ));
            env.push((
                format!("STRATA_INPUT_{}_URI", env_part(&i.name)),
                i.uri.clone(),
            ));
        }
        for o in &plan.step.outputs {
            let path = work.join(o);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            env.push((
                format!("STRATA_OUTPUT_{}", env_part(o)),
                path.display().to_string(),
            ));
        }
        env.extend(plan.step.env.iter().map(|(k, v)| (k.clone(), v.clone())));

        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(work)
            .envs(env)
            .stdin(std::process::Stdio::null())
            // Its own process group: Ctrl-C reaches strata alone, and a timeout or a
            // cancel stops the step and everything it started.
            .process_group(0);
        // SAFETY: prctl(2) in the child between fork and exec touches no shared state.
        // The step dies with the thread that waits for it, should strata be killed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // One pipe for standard output and error: the log interleaves them as written.
        let (reader, writer) =
            std::io::pipe().map_err(|e| failed(format!("cannot make a pipe: {e}")))?;
        let second = writer
            .try_clone()
            .map_err(|e| failed(format!("cannot make a pipe: {e}")))?;
        cmd.stdout(writer).stderr(second);
        let spawned = cmd.spawn();
        // The child holds the write ends now: drop ours, so the pipe ends with it.
        drop(cmd);
        let mut child = spawned.map_err(|e| failed(format!("cannot start `sh -c`: {e}")))?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        ctx.live
            .logs
            .lock()
            .unwrap()
            .insert(name.to_string(), tail.clone());
        // The reader is a thread of its own, not joined: a process that left the step's
        // group may hold the pipe open forever, and the step must still end. It keeps
        // the tail itself, and hands each chunk to this thread for the watcher.
        let (chunks_tx, chunks) = std::sync::mpsc::channel::<Vec<u8>>();
        {
            let tail = tail.clone();
            let mut reader = reader;
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            tail.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(&buf[..n]);
                            if chunks_tx.send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let show = |chunk: Vec<u8>| {
            (ctx.watch)(RunEvent::Output {
                step: name,
                text: &String::from_utf8_lossy(&chunk),
            });
        };
        let deadline = plan.timeout.and_then(|t| started.checked_add(t));
        let mut pause = Duration::from_millis(1);
        let status = loop {
            while let Ok(chunk) = chunks.try_recv() {
                show(chunk);
            }
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(failed(format!("waiting for it: {e}"))),
            }
            if ctx.cancelled() {
                stop_group(&mut child, TERM_GRACE);
                break Err((StepStatus::Cancelled, "cancelled while it ran".into()));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop_group(&mut child, TERM_GRACE);
                break Err(failed(format!(
                    "it ran past its timeout ({}) and was stopped",
                    plan.step.timeout.as_deref().unwrap_or_default()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL_MAX);
        };
        // What the command left running in its group goes with it, and the shell is
        // reaped whatever happened; then the pipe closes. (A process that left the group
        // may keep it open: strata stops waiting for its output after 2 s.)
        // SAFETY: kill(2) on the step's own process group.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        let until = Instant::now() + Duration::from_secs(2);
        while let Ok(chunk) = chunks.recv_timeout(until.saturating_duration_since(Instant::now())) {
            show(chunk);
        }
        self.keep_log(run_id, name, &tail);
        let status = status?;
        ctx.update(name, |s| s.exit_code = status.code());
        if status.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        Err(failed(match (status.code(), status.signal()) {
            (Some(code), _) => format!("its command exited with code {code}"),
            (None, Some(sig)) => format!("its command was killed by signal {sig}"),
            _ => "its command failed".into(),
        }))
    }

    /// Writes the tail of a step's output to the store.
    fn keep_log(&self, run_id: &str, step: &str, tail: &Mutex<Tail>) {
        let mut batch = Batch::new();
        batch.put(
            TreeId::RunLogs,
            &format!("{run_id}/{step}"),
            &*tail.lock().unwrap(),
        );
        if let Err(e) = self.store.apply(batch) {
            self.warn(format!("could not keep the output of step `{step}`: {e}"));
        }
    }

    /// The run `id`, or the one run whose id starts with it.
    pub fn run_get(&self, id: &str) -> Result<RunReport> {
        let r = self.run_get_any(id)?;
        // On a team server, a run of a restricted stack is read by who may read the stack.
        self.require(&crate::Need::StackRead(r.stack.clone()))?;
        Ok(r)
    }

    fn run_get_any(&self, id: &str) -> Result<RunReport> {
        if let Some(r) = self.store.get::<RunReport>(TreeId::Runs, id)? {
            return Ok(r);
        }
        let found: Vec<(String, RunReport)> = if id.len() >= 4 {
            self.store.scan(TreeId::Runs, id)?
        } else {
            Vec::new()
        };
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one").1),
            0 => Err(Error::not_found(
                format!("run `{id}`"),
                "list the runs with `strata pipeline runs list` (an id may be shortened to its first 4 characters or more)",
            )),
            n => Err(Error::invalid(
                format!("{n} runs have ids starting with `{id}`"),
                "give more of the id",
            )),
        }
    }

    /// Every run, newest first (of `pipeline` only, if given).
    pub fn run_list(&self, pipeline: Option<&str>) -> Result<Vec<RunSummary>> {
        let mut all: Vec<RunSummary> = self
            .store
            .scan::<RunReport>(TreeId::Runs, "")?
            .iter()
            .filter(|(_, r)| pipeline.is_none_or(|p| r.pipeline == p))
            .filter(|(_, r)| self.may_see_stack(&r.stack).unwrap_or(false))
            .map(|(_, r)| RunSummary::from(r))
            .collect();
        all.sort_by(|a, b| {
            b.started_ms
                .cmp(&a.started_ms)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(all)
    }

    /// What step `step` of run `id` wrote, from byte `from` (live while it runs here).
    pub fn run_logs(&self, id: &str, step: Option<&str>, from: u64) -> Result<Vec<StepLog>> {
        let r = self.run_get(id)?;
        if let Some(s) = step
            && !r.steps.iter().any(|x| x.name == s)
        {
            return Err(Error::not_found(
                format!("step `{s}` of run {}", r.run_id),
                format!(
                    "its steps are: {}",
                    r.steps
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let live = self.shared.runs.lock().unwrap().get(&r.run_id).cloned();
        let mut out = Vec::new();
        for s in r.steps.iter().filter(|s| step.is_none_or(|n| n == s.name)) {
            let running = live
                .as_ref()
                .and_then(|l| l.logs.lock().unwrap().get(&s.name).cloned());
            if let Some(t) = running
                && s.status == StepStatus::Running
            {
                out.push(t.lock().unwrap().since(&s.name, from, true));
                continue;
            }
            // A cached step wrote nothing this time: what it wrote in the run it came from.
            let from_run = s.cached_from.as_deref().unwrap_or(&r.run_id);
            let kept: Option<Tail> = self
                .store
                .get(TreeId::RunLogs, &format!("{from_run}/{}", s.name))?;
            if let Some(t) = kept {
                out.push(t.since(&s.name, from, false));
            } else if step.is_some() {
                out.push(Tail::default().since(&s.name, from, s.status == StepStatus::Running));
            }
        }
        Ok(out)
    }

    /// Asks run `id`, under way in this process, to stop: running steps get SIGTERM (then
    /// SIGKILL), no new step starts, and the run is recorded as cancelled.
    pub fn run_cancel(&self, id: &str, why: &str) -> Result<RunReport> {
        let r = self.run_get(id)?;
        let live = self.shared.runs.lock().unwrap().get(&r.run_id).cloned();
        let Some(live) = live else {
            return Err(Error::invalid(
                format!(
                    "run {} is {}, not under way here",
                    r.run_id,
                    r.status.label()
                ),
                "only a running run can be cancelled (a run started without the daemon stops with Ctrl-C in its terminal)",
            ));
        };
        live.why
            .lock()
            .unwrap()
            .get_or_insert_with(|| why.to_string());
        live.cancel.store(true, Ordering::SeqCst);
        Ok(r)
    }

    /// How many runs are under way in this process.
    pub fn runs_under_way(&self) -> usize {
        self.shared
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Cancels every run under way here (the daemon is stopping).
    pub fn cancel_all_runs(&self, why: &str) {
        for live in self.shared.runs.lock().unwrap().values() {
            live.why
                .lock()
                .unwrap()
                .get_or_insert_with(|| why.to_string());
            live.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Deletes run `id`: its record, logs and cache entries, and (unless `keep_artifacts`)
    /// its artifacts in the store, but those a later run reuses from the cache.
    pub fn run_delete(&self, id: &str, keep_artifacts: bool) -> Result<RunReport> {
        let r = self.run_get(id)?;
        if r.status == RunStatus::Running {
            return Err(Error::Busy {
                what: format!("run {} is under way", r.run_id),
                hint: format!("cancel it first: `strata pipeline cancel {}`", r.run_id),
            });
        }
        let others = self.store.scan::<RunReport>(TreeId::Runs, "")?;
        let used_elsewhere = |key: &str| {
            others.iter().any(|(other, o)| {
                *other != r.run_id
                    && o.steps
                        .iter()
                        .any(|s| s.outputs.iter().chain(&s.inputs).any(|a| a.key == key))
            })
        };
        // An artifact goes with the last run that uses it: this run's own outputs, and
        // those it took from the cache whose run is gone, unless another run uses them.
        let owner_gone = |key: &str| {
            let owner = key.split('/').nth(2).unwrap_or_default();
            owner == r.run_id || !others.iter().any(|(id, _)| id == owner)
        };
        let mine: Vec<&ArtifactRef> = r
            .steps
            .iter()
            .flat_map(|s| s.outputs.iter())
            .filter(|a| owner_gone(&a.key) && !used_elsewhere(&a.key))
            .collect();
        if !keep_artifacts && !mine.is_empty() {
            for a in &mine {
                match self.artifact_remove(&r.artifact_store, &a.key, false) {
                    Ok(()) => {}
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(Error::invalid(
                            format!(
                                "cannot delete artifact `{}` of run {}: {e}",
                                a.key, r.run_id
                            ),
                            format!(
                                "bring artifact store `{}` up, or delete the record alone with `--keep-artifacts`",
                                r.artifact_store
                            ),
                        ));
                    }
                }
            }
            // The folders the run's outputs were in, if now empty.
            let mut dirs: Vec<String> = mine
                .iter()
                .filter_map(|a| a.key.rsplit_once('/').map(|(d, _)| d.to_string()))
                .collect();
            dirs.sort();
            dirs.dedup();
            let runs_of: Vec<String> = dirs
                .iter()
                .filter_map(|d| d.rsplit_once('/').map(|(run, _)| run.to_string()))
                .collect();
            dirs.extend(runs_of);
            dirs.sort();
            dirs.dedup();
            for d in dirs.iter().rev() {
                let _ = self.artifact_remove(&r.artifact_store, d, false);
            }
        }
        let mut batch = Batch::new();
        batch.remove(TreeId::Runs, &r.run_id);
        for s in &r.steps {
            batch.remove(TreeId::RunLogs, &format!("{}/{}", r.run_id, s.name));
        }
        for (k, e) in self.store.scan::<CacheEntry>(TreeId::RunCache, "")? {
            if e.run_id == r.run_id {
                batch.remove(TreeId::RunCache, &k);
            }
        }
        self.store.apply(batch)?;
        // The folder of its working directories, named by an id strata made (a record
        // restored from a backup names anything): only a well-formed id is a path.
        if uuid::Uuid::parse_str(&r.run_id).is_ok() {
            let _ = std::fs::remove_dir_all(self.home.root().join("runs").join(&r.run_id));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str) -> crate::sandbox::calls::PipelineStep {
        crate::sandbox::calls::PipelineStep {
            name: name.into(),
            run: Some("true".into()),
            ..Default::default()
        }
    }

    fn err(p: Pipeline) -> String {
        match plan(&p) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_plan_adds_the_upstream_steps_inputs_imply() {
        let mut load = step("load");
        load.outputs = vec!["data.csv".into()];
        let mut train = step("train");
        train.inputs = vec!["load.data.csv".into()];
        let p = plan(&Pipeline {
            name: "p".into(),
            steps: vec![load, train],
        })
        .unwrap();
        assert_eq!(p[1].step.upstream, ["load"]);
        assert_eq!(p[1].inputs, [("load".to_string(), "data.csv".to_string())]);
    }

    #[test]
    fn a_plan_names_each_mistake() {
        let mut a = step("a");
        a.upstream = vec!["b".into()];
        let mut b = step("b");
        b.upstream = vec!["a".into()];
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a, b]
            })
            .contains("cycle: a → b → a")
        );
        let mut a = step("a");
        a.upstream = vec!["nope".into()];
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a]
            })
            .contains("`nope`")
        );
        let mut a = step("a");
        a.outputs = vec!["m".into(), "m/x".into()];
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a]
            })
            .contains("collide")
        );
        let mut a = step("a");
        a.inputs = vec!["b.x".into()];
        let b = step("b");
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a, b]
            })
            .contains("has no output `x`")
        );
        let mut a = step("a");
        a.timeout = Some("10".into());
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a]
            })
            .contains("no unit")
        );
        let mut a = step("a");
        a.env.insert("STRATA_RUN_ID".into(), "x".into());
        assert!(
            err(Pipeline {
                name: "p".into(),
                steps: vec![a]
            })
            .contains("STRATA_")
        );
    }

    #[test]
    fn parameters_are_substituted_as_one_shell_word() {
        let params = BTreeMap::from([("rows".to_string(), "1; rm -rf ~".to_string())]);
        let (cmd, files) = substitute(
            "s",
            "python3 {{pipeline.dir}}/load.py --rows {{ param.rows }}",
            &params,
            Path::new("/p q"),
        )
        .unwrap();
        assert_eq!(cmd, "python3 '/p q'/load.py --rows '1; rm -rf ~'");
        assert_eq!(files, ["load.py"]);
        assert!(substitute("s", "{{param.nope}}", &params, Path::new("/")).is_err());
        assert!(substitute("s", "{{env.HOME}}", &params, Path::new("/")).is_err());
    }

    #[test]
    fn a_tracker_gives_only_where_the_run_is_under_its_own_word() {
        let net = crate::sandbox::net::NetGrants::default();
        let ok =
            |flavor: &str, name: &str, value: &str| check_tracker_var(flavor, name, value, &net);
        assert!(ok("mlflow", "MLFLOW_RUN_ID", "abc").is_ok());
        assert!(ok("wandb", "WANDB_PROJECT", "p").is_ok());
        // Names chosen so that the flavor's word reaches what a tool reads.
        for (flavor, name) in [
            ("git-ssh", "GIT_SSH_COMMAND"),
            ("git", "GIT_CONFIG_COUNT"),
            ("java", "JAVA_TOOL_OPTIONS"),
            ("ld", "LD_PRELOAD"),
            ("https", "HTTPS_PROXY"),
            ("aws", "AWS_CONFIG_FILE"),
            ("strata-output", "STRATA_RUN_ID"),
            ("mlflow", "PATH"),
            ("mlflow", "MLFLOW_TRACKING_TOKEN"),
        ] {
            assert!(ok(flavor, name, "x").is_err(), "{flavor}: {name}");
        }
        // A URL only to a granted origin (none here), and a `_URI` only as a URL.
        assert!(ok("mlflow", "MLFLOW_TRACKING_URI", "http://10.0.0.1/").is_err());
        assert!(ok("mlflow", "MLFLOW_TRACKING_URI", "/var/tmp/runs").is_err());
        assert!(ok("mlflow", "MLFLOW_RUN_NAME", "see https://evil.example").is_err());
    }

    #[test]
    fn a_tail_keeps_the_last_bytes_and_counts_them_all() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; STEP_LOG_BYTES]);
        t.push(b"xyz");
        let l = t.since("s", 0, false);
        assert!(l.truncated);
        assert_eq!(l.next, STEP_LOG_BYTES as u64 + 3);
        assert!(l.text.ends_with("xyz"));
        assert_eq!(t.since("s", l.next - 2, false).text, "yz");
    }
}
