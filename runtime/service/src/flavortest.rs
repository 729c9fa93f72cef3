//! `strata flavor test PATH.wasm`: what a flavor author runs before shipping. In a
//! throwaway home, it registers the flavor (compile, contract and `describe` checks),
//! registers a component with an example configuration built from the flavor's own
//! schema (`validate`), and runs a full lifecycle round: `up`, `status` must agree; while
//! it is up, what its type is used for (an artifact store's every call on a probe file; a
//! two-step pipeline run, which for an orchestrator is its `launch`); `up` again must
//! change nothing; `down --force`, `status` must agree again. The home is removed
//! afterwards, whatever happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
#[allow(unused_imports)]
use strata_api::views::*;

use serde::Serialize;

use super::{FlavorOptions, Progress, Service, StepOutcome};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::{ComponentType, FieldKind};

/// The name of the component `flavor test` registers.
const COMPONENT: &str = "flavor-test";

/// One step of a flavor test.
#[derive(Clone, Debug, Serialize)]
pub struct TestStep {
    pub step: String,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
}

/// What `flavor test` found.
#[derive(Clone, Debug, Serialize)]
pub struct FlavorTestReport {
    pub flavor: String,
    pub component_type: Option<ComponentType>,
    pub sha256: String,
    /// The configuration the test component was registered with.
    pub config: BTreeMap<String, String>,
    pub steps: Vec<TestStep>,
    pub passed: bool,
}

/// One lifecycle round of the test: its name, what it runs (collecting progress), and
/// what `status` must say afterwards (provisioned, running), if anything.
type Round<'a> = (
    &'a str,
    &'a dyn Fn(&mut Vec<Progress>) -> Result<()>,
    Option<(bool, bool)>,
);

/// A home under the temp directory, removed when dropped.
struct ScratchHome(PathBuf);

impl Drop for ScratchHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the test. Only a failure to set up the scratch home is an `Err`; a failing
/// flavor is a report with `passed: false`.
pub fn flavor_test(
    path: &Path,
    overrides: BTreeMap<String, String>,
    opts: FlavorOptions,
) -> Result<FlavorTestReport> {
    let dir = std::env::temp_dir().join(format!("strata-flavor-test-{}", super::new_id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let scratch = ScratchHome(dir);
    let svc = Service::open(Home::at(scratch.0.join("home")))?;
    let sink = Sink::start()?;
    let mut report = FlavorTestReport {
        flavor: path.display().to_string(),
        component_type: None,
        sha256: String::new(),
        config: BTreeMap::new(),
        steps: Vec::new(),
        passed: false,
    };
    let step =
        |report: &mut FlavorTestReport, name: &str, f: &mut dyn FnMut() -> Result<String>| {
            let started = Instant::now();
            let outcome = f();
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let ok = outcome.is_ok();
            report.steps.push(TestStep {
                step: name.to_string(),
                ok,
                ms,
                detail: match outcome {
                    Ok(d) => d,
                    Err(e) => e.to_string(),
                },
            });
            ok
        };

    // 1. Registration: compile, contract checks, `describe`.
    let mut registered = None;
    let ok = step(
        &mut report,
        "register (compile, checks, describe)",
        &mut || {
            let v = svc.flavor_register(None, path, opts.clone())?;
            let info = &v.record.info;
            let detail = format!(
                "{} flavor `{}` {}, {}",
                info.component_type.label(),
                info.name,
                info.version,
                super::flavors::plural(info.config.len(), "field")
            );
            registered = Some(v);
            Ok(detail)
        },
    );
    let Some(flavor) = registered.filter(|_| ok) else {
        return Ok(report);
    };
    let t = flavor.view.component_type;
    report.flavor = flavor.view.flavor.clone();
    report.component_type = Some(t);
    report.sha256 = flavor.view.sha256.clone();

    // 2. An example configuration from the schema, then `validate` through register.
    let config = match example_config(&svc, &flavor.record.info, &scratch.0, overrides, sink.port) {
        Ok(c) => c,
        Err(e) => {
            report.steps.push(TestStep {
                step: "example configuration".into(),
                ok: false,
                ms: 0.0,
                detail: e.to_string(),
            });
            return Ok(report);
        }
    };
    report.config = config.clone();
    if !step(&mut report, "register a component (validate)", &mut || {
        svc.component_register(
            t,
            COMPONENT,
            &flavor.view.flavor,
            config.clone(),
            Default::default(),
        )?;
        Ok(format!("configuration: {}", show(&config)))
    }) {
        return Ok(report);
    }

    // 3. A full lifecycle round, with `status` checked against each step.
    let calls = |report: &mut FlavorTestReport, events: Vec<Progress>| {
        for p in events {
            let (ok, ms, detail) = match p.outcome {
                StepOutcome::Started => continue,
                StepOutcome::Done { ms } => (true, ms as f64, String::new()),
                StepOutcome::Unchanged { detail } => (true, 0.0, detail),
                StepOutcome::Failed { message } => (false, 0.0, message),
            };
            report.steps.push(TestStep {
                step: format!("  {}", p.step),
                ok,
                ms,
                detail,
            });
        }
    };
    let expect_status = |want: (bool, bool)| -> Result<String> {
        let s = svc.flavor_status(&svc.component_or_err(t, COMPONENT)?)?;
        if (s.provisioned, s.running) != want {
            return Err(Error::invalid(
                format!(
                    "`status` says provisioned={} running={}, expected provisioned={} running={} ({})",
                    s.provisioned, s.running, want.0, want.1, s.detail
                ),
                "make `status` report what the lifecycle calls did",
            ));
        }
        Ok(s.detail)
    };
    let rounds: [Round; 3] = [
        (
            "up (provision, resume)",
            &|ev| svc.component_up(t, COMPONENT, &mut |p| ev.push(p)),
            Some((true, true)),
        ),
        (
            "up again (must change nothing)",
            &|ev| {
                svc.component_up(t, COMPONENT, &mut |p| ev.push(p))?;
                match ev
                    .iter()
                    .find(|p| matches!(p.outcome, StepOutcome::Done { .. }))
                {
                    Some(p) => Err(Error::invalid(
                        format!(
                            "a second `up` called `{}`: `status` did not report the component as up",
                            p.step
                        ),
                        "make `status` read back what provision and resume did",
                    )),
                    None => Ok(()),
                }
            },
            None,
        ),
        (
            "down --force (suspend, deprovision)",
            &|ev| svc.component_down(t, COMPONENT, true, &mut |p| ev.push(p)),
            Some((false, false)),
        ),
    ];
    for (i, (name, run, want)) in rounds.into_iter().enumerate() {
        let mut events = Vec::new();
        let ok = step(&mut report, name, &mut || {
            run(&mut events).map(|()| String::new())
        });
        calls(&mut report, events);
        if !ok {
            return Ok(report);
        }
        if let Some(want) = want
            && !step(&mut report, "  status agrees", &mut || expect_status(want))
        {
            return Ok(report);
        }
        // While it is up: what a component of its type is used for.
        if i == 0
            && !step(
                &mut report,
                "network: no request leaves without a grant",
                &mut || ungranted_round(&svc, t, &sink),
            )
        {
            return Ok(report);
        }
        if i == 0 {
            if t == ComponentType::ArtifactStore
                && !step(
                    &mut report,
                    "artifact store calls (write, read, exists, stat, list, copy, rename, remove)",
                    &mut || store_round(&svc),
                )
            {
                return Ok(report);
            }
            if t == ComponentType::Alerter
                && !step(&mut report, "post a message (alerter)", &mut || {
                    post_round(&svc)
                })
            {
                return Ok(report);
            }
            let label = if t == ComponentType::Orchestrator {
                "a pipeline run (prepare-pipeline-deployment, launch)"
            } else {
                "a pipeline run (prepare-pipeline-deployment)"
            };
            if !step(&mut report, label, &mut || pipeline_round(&svc, t)) {
                return Ok(report);
            }
        }
    }
    let got = sink.requests();
    if !got.is_empty() {
        report.steps.push(TestStep {
            step: "network: requests the loopback sink received".into(),
            ok: true,
            ms: 0.0,
            detail: got.join(", "),
        });
    }
    report.passed = true;
    Ok(report)
}

/// `post` through the alerter, if its flavor exports it (an alerter built for the
/// `flavor` world does not, and says nothing).
fn post_round(svc: &Service) -> Result<String> {
    let c = svc.component_or_err(ComponentType::Alerter, COMPONENT)?;
    if !svc.bind(&c, false)?.loaded.exports_alerter() {
        return Ok(
            "its flavor does not export `alerter` (world `alerter-flavor`): `strata alerter post` refuses it"
                .into(),
        );
    }
    let params = [("title".to_string(), "strata flavor test".to_string())]
        .into_iter()
        .collect();
    let r = svc.alerter_post(COMPONENT, "a message from `strata flavor test`", params)?;
    Ok(r.detail)
}

/// `resume` again with the same configuration but no network grant: whatever the
/// flavor asks for must be refused before it leaves strata (the sink sees nothing), and
/// the flavor must answer, not trap.
fn ungranted_round(svc: &Service, t: ComponentType, sink: &Sink) -> Result<String> {
    let c = svc.component_or_err(t, COMPONENT)?;
    let mut b = svc.bind(&c, false)?;
    if b.grants.net.origins.is_empty() {
        return Ok("the flavor has no `url` field: nothing to grant".into());
    }
    b.grants.net.origins.clear();
    let before = sink.requests().len();
    let answer = b
        .target(svc.sandbox()?)
        .step(crate::sandbox::calls::Step::Resume, &b.ctx)?;
    let after = sink.requests().len();
    if after != before {
        return Err(Error::Internal(format!(
            "a request reached the sink without a grant ({} new)",
            after - before
        )));
    }
    let refused = answer
        .logs
        .iter()
        .filter(|l| l.message.contains(" refused: "))
        .count();
    Ok(match answer.value {
        Err(e) => format!("{refused} request(s) refused; the flavor answered: {e}"),
        Ok(_) if refused > 0 => format!(
            "{refused} request(s) refused; the flavor answered ok (it may want to report a refused request as an error)"
        ),
        Ok(_) => "`resume` made no request".into(),
    })
}

/// A loopback HTTP server for `flavor test`: answers every request `200 {"ok":true}`
/// and records `METHOD /path` of each. Stopped when dropped.
struct Sink {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Sink {
    fn start() -> Result<Sink> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("starting flavor test's loopback sink", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("starting the sink", e))?
            .port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                    if buf.len() > 64 * 1024 {
                        break None;
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0)
                    .min(1 << 20);
                while buf.len() < head_end + length {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = head.lines().next().unwrap_or("").to_string();
                let mut words = line.split(' ');
                let (m, p) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let p = p.split('?').next().unwrap_or("");
                seen2
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{m} {p}"));
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}");
            }
        });
        Ok(Sink { port, seen, stop })
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Every artifact-store call on a probe file, each answer checked against the contract
/// in `wit/artifact-store.wit`: what a pipeline's steps do with the store.
fn store_round(svc: &Service) -> Result<String> {
    use crate::sandbox::calls::WriteMode;
    let c = svc.component_or_err(ComponentType::ArtifactStore, COMPONENT)?;
    let b = svc.bind(&c, false)?;
    let target = b.target(svc.sandbox()?);
    let ctx = &b.ctx;
    let wrong = |call: &str, what: String| {
        Error::invalid(
            format!("`{call}` {what}"),
            "see the artifact-store interface in wit/artifact-store.wit for what each call must do",
        )
    };
    let failed = |call: &str, message: String| wrong(call, format!("failed: {message}"));
    let (dir, file, copy, moved) = (
        "strata-flavor-test",
        "strata-flavor-test/probe.txt",
        "strata-flavor-test/copy.txt",
        "strata-flavor-test/moved.txt",
    );
    let data = b"written by strata flavor test\n";
    let len = data.len() as u64;
    // `write` returns the file's size afterwards.
    let write = |mode: WriteMode, label: &str, want: u64| -> Result<()> {
        let size = target
            .store_write(ctx, file, data, mode)?
            .value
            .map_err(|m| failed(label, m))?;
        if size != want {
            return Err(wrong(
                label,
                format!("says the file is {size} bytes afterwards, not {want}"),
            ));
        }
        Ok(())
    };
    target
        .store_makedirs(ctx, dir)?
        .value
        .map_err(|m| failed("makedirs", m))?;
    write(WriteMode::CreateNew, "write", len)?;
    if target
        .store_write(ctx, file, data, WriteMode::CreateNew)?
        .value
        .is_ok()
    {
        return Err(wrong(
            "write",
            "in create-new mode replaced a file that exists".into(),
        ));
    }
    write(WriteMode::Append, "write (append)", 2 * len)?;
    let whole = [data.as_slice(), data.as_slice()].concat();
    let read = target
        .store_read(ctx, file, 0, 1 << 20)?
        .value
        .map_err(|m| failed("read", m))?;
    if read != whole {
        return Err(wrong(
            "read",
            format!(
                "returned {} bytes, not the {} written",
                read.len(),
                whole.len()
            ),
        ));
    }
    let range = target
        .store_read(ctx, file, len, 5)?
        .value
        .map_err(|m| failed("read (a range)", m))?;
    if range != data[..5] {
        return Err(wrong(
            "read",
            "of a range returned other bytes than were written there".into(),
        ));
    }
    write(WriteMode::Truncate, "write (truncate)", len)?;
    if !target
        .store_exists(ctx, file)?
        .value
        .map_err(|m| failed("exists", m))?
    {
        return Err(wrong(
            "exists",
            format!("says `{file}`, just written, does not exist"),
        ));
    }
    let stat = target
        .store_stat(ctx, file)?
        .value
        .map_err(|m| failed("stat", m))?;
    if stat.size != len || stat.is_dir {
        return Err(wrong(
            "stat",
            format!(
                "says size {} (directory: {}), not a file of {len} bytes",
                stat.size, stat.is_dir
            ),
        ));
    }
    target
        .store_copy(ctx, file, copy, false)?
        .value
        .map_err(|m| failed("copy", m))?;
    target
        .store_rename(ctx, copy, moved, false)?
        .value
        .map_err(|m| failed("rename", m))?;
    let names: Vec<String> = target
        .store_list(ctx, dir)?
        .value
        .map_err(|m| failed("list", m))?
        .into_iter()
        .map(|e| e.name)
        .collect();
    // Sorted by name, as the contract says.
    if names != ["moved.txt", "probe.txt"] {
        return Err(wrong(
            "list",
            format!(
                "of `{dir}` after a copy and a rename says {names:?}, not [\"moved.txt\", \"probe.txt\"] (sorted by name)"
            ),
        ));
    }
    target
        .store_remove(ctx, dir, true)?
        .value
        .map_err(|m| failed("remove", m))?;
    if target
        .store_exists(ctx, dir)?
        .value
        .map_err(|m| failed("exists", m))?
    {
        return Err(wrong("remove", format!("(recursive) left `{dir}` behind")));
    }
    Ok(format!(
        "14 calls on {file} (makedirs, write new and again, append, read whole and a range, truncate, exists, stat, copy, rename, list, remove, exists), each answer as the contract says"
    ))
}

/// A two-step pipeline run on a stack made of the component and the built-in defaults:
/// every component's `prepare-pipeline-deployment`, then the orchestrator's `launch`.
fn pipeline_round(svc: &Service, t: ComponentType) -> Result<String> {
    let f = svc.flavor_of(&svc.component_or_err(t, COMPONENT)?)?;
    let needs: Vec<String> = f
        .info
        .requirements
        .iter()
        .filter(|r| r.kind == crate::model::RequirementKind::Requires)
        .map(|r| r.component_type.label().to_string())
        .collect();
    if !needs.is_empty() {
        // A stack of this component and the defaults would break its own rules.
        return Ok(format!(
            "skipped: the flavor needs {} in its stack; try it with `strata pipeline run` on a stack that has them",
            needs.join(", ")
        ));
    }
    let mut members = BTreeMap::from([
        (
            ComponentType::Orchestrator,
            vec![crate::model::DEFAULT_NAME.to_string()],
        ),
        (
            ComponentType::ArtifactStore,
            vec![crate::model::DEFAULT_NAME.to_string()],
        ),
    ]);
    members.insert(t, vec![COMPONENT.to_string()]);
    svc.stack_register(COMPONENT, members, true)?;
    svc.stack_up(Some(COMPONENT), &mut |_| {})?;
    let step = |name: &str, upstream: &[&str]| crate::sandbox::calls::PipelineStep {
        name: name.into(),
        upstream: upstream.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let pipeline = super::Pipeline {
        name: "flavor-test".into(),
        steps: vec![step("load", &[]), step("train", &["load"])],
    };
    let run = svc.pipeline_run(
        &pipeline,
        BTreeMap::from([("flavor_test".into(), "1".into())]),
    )?;
    // The wave each step runs in: `train` must come in a later one than `load`.
    let wave = |step: &str| {
        run.launch
            .schedule
            .iter()
            .position(|w| w.iter().any(|s| s == step))
    };
    let in_order =
        matches!((wave("load"), wave("train")), (Some(load), Some(train)) if load < train);
    if t == ComponentType::Orchestrator && !in_order {
        return Err(Error::invalid(
            format!(
                "`launch` scheduled {:?} for `load`, then `train` (which needs `load`)",
                run.launch.schedule
            ),
            "a step runs after every step in its `upstream`",
        ));
    }
    Ok(format!(
        "prepared {}; scheduled {:?}",
        run.prepared.join(", "),
        run.launch.schedule
    ))
}

/// Values for every required field without a default: the caller's, else an example of
/// the field's kind (a fresh directory for a path, a throwaway secret for a secret).
fn example_config(
    svc: &Service,
    info: &crate::model::FlavorInfo,
    scratch: &Path,
    mut overrides: BTreeMap<String, String>,
    sink_port: u16,
) -> Result<BTreeMap<String, String>> {
    let mut config = BTreeMap::new();
    for spec in &info.config {
        if let Some(v) = overrides.remove(&spec.name) {
            config.insert(spec.name.clone(), v);
            continue;
        }
        if !spec.required || spec.default.is_some() {
            continue;
        }
        let value = match spec.kind {
            FieldKind::Text => "example".to_string(),
            FieldKind::Integer => "1".to_string(),
            FieldKind::Float => "1.0".to_string(),
            FieldKind::Boolean => "false".to_string(),
            // The loopback sink `flavor test` runs: the field's origin is granted.
            FieldKind::Url => format!("http://127.0.0.1:{sink_port}/{}", spec.name),
            FieldKind::Path => scratch.join(&spec.name).display().to_string(),
            FieldKind::Secret => {
                svc.secret_create(
                    "flavor-test",
                    BTreeMap::from([(spec.name.clone(), "example-secret".to_string())]),
                )
                .or_else(|_| {
                    svc.secret_update(
                        "flavor-test",
                        BTreeMap::from([(spec.name.clone(), "example-secret".to_string())]),
                    )
                })?;
                format!("{{{{flavor-test.{}}}}}", spec.name)
            }
        };
        config.insert(spec.name.clone(), value);
    }
    if let Some(k) = overrides.keys().next() {
        return Err(Error::invalid(
            format!("the flavor has no field `{k}`"),
            "see its fields in the register step's output, or with `strata TYPE flavor describe`",
        ));
    }
    Ok(config)
}

fn show(config: &BTreeMap<String, String>) -> String {
    if config.is_empty() {
        return "defaults only".into();
    }
    config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
