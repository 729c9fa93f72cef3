//! Pipeline runs: the runtime configuration is handed to every component of the active
//! stack (`prepare-pipeline-deployment`, orchestrator last), then the run goes to the
//! orchestrator (`launch`), as ZenML's `pipeline.run(runtime_param=…)`.

use std::collections::BTreeMap;
#[allow(unused_imports)]
use strata_api::views::*;
use strata_model::calls::LaunchReport;

use super::Service;
use crate::error::{Error, Result};
use crate::model::ComponentType;
use crate::sandbox::calls::PipelineStep;

/// The prefix of the keys strata adds to every run's runtime configuration for
/// `prepare-pipeline-deployment`: `strata.run_id`, `strata.pipeline`, `strata.stack`.
pub const RESERVED_PREFIX: &str = "strata.";

/// Every name and key of a run follows the rule of every name: printable, never a
/// control character (they reach the orchestrator, and come back in its report).
pub(super) fn check_names(pipeline: &Pipeline, runtime: &BTreeMap<String, String>) -> Result<()> {
    use crate::model::text::check_name_chars;
    check_name_chars("pipeline name", &pipeline.name)?;
    for s in &pipeline.steps {
        check_name_chars("step name", &s.name)?;
        for u in &s.upstream {
            check_name_chars("upstream step name", u)?;
        }
        for k in s.parameters.keys() {
            check_name_chars("step parameter key", k)?;
        }
    }
    for k in runtime.keys() {
        check_name_chars("runtime parameter key", k)?;
        if k.starts_with(RESERVED_PREFIX) {
            return Err(Error::invalid(
                format!(
                    "runtime parameter `{k}` starts with `{RESERVED_PREFIX}`, which strata keeps for its own keys"
                ),
                "rename the parameter",
            ));
        }
    }
    Ok(())
}

/// Checks an orchestrator's schedule against the pipeline it was given: every step
/// exactly once, no step strata did not hand it, no empty wave, and every step in a
/// later wave than each of its upstream steps. A schedule that breaks any of these is a
/// lie, and is never shown as the run's.
fn check_schedule(
    steps: &[PipelineStep],
    schedule: &[Vec<String>],
) -> std::result::Result<(), String> {
    let mut wave_of = BTreeMap::new();
    for (i, wave) in schedule.iter().enumerate() {
        if wave.is_empty() {
            return Err(format!("wave {} is empty", i + 1));
        }
        for name in wave {
            if !steps.iter().any(|s| &s.name == name) {
                return Err(format!(
                    "it names step `{name}`, which the pipeline does not have"
                ));
            }
            if wave_of.insert(name.as_str(), i).is_some() {
                return Err(format!("it schedules step `{name}` twice"));
            }
        }
    }
    for s in steps {
        let Some(&at) = wave_of.get(s.name.as_str()) else {
            return Err(format!("it leaves out step `{}`", s.name));
        };
        for u in &s.upstream {
            if wave_of.get(u.as_str()).is_some_and(|&w| w >= at) {
                return Err(format!(
                    "it runs step `{}` in wave {} but its upstream step `{u}` in wave {}",
                    s.name,
                    at + 1,
                    wave_of[u.as_str()] + 1
                ));
            }
        }
    }
    Ok(())
}

impl Service {
    /// Runs `pipeline` on the active stack with the runtime configuration `runtime`, its
    /// relative paths taken from the command's directory, every step with the cache,
    /// showing nothing as it goes: see [`Service::pipeline_run_with`].
    pub fn pipeline_run(
        &self,
        pipeline: &Pipeline,
        runtime: BTreeMap<String, String>,
    ) -> Result<RunReport> {
        let opts = super::runs::RunOptions::new(self.cwd.clone());
        self.pipeline_run_with(pipeline, runtime, &opts, &|_| {})
    }

    /// Hands the runtime configuration to every component of `stack`
    /// (`prepare-pipeline-deployment`, orchestrator last), then the run to the
    /// orchestrator (`launch`), and checks its schedule. Answers the components
    /// prepared, the orchestrator's name, its report and what the flavors logged.
    pub(super) fn prepare_and_launch(
        &self,
        pipeline: &Pipeline,
        runtime: BTreeMap<String, String>,
        run_id: &str,
        stack: &crate::model::StackRecord,
    ) -> Result<(Vec<String>, String, LaunchReport, Vec<String>)> {
        let stack_name = stack.name.clone();
        let runtime: Vec<(String, String)> = runtime.into_iter().collect();
        // What each component is told: the user's pairs, and what the run is.
        let mut told = runtime.clone();
        told.extend([
            (format!("{RESERVED_PREFIX}run_id"), run_id.to_string()),
            (format!("{RESERVED_PREFIX}pipeline"), pipeline.name.clone()),
            (format!("{RESERVED_PREFIX}stack"), stack_name.clone()),
        ]);
        let mut prepared = Vec::new();
        let mut logs = Vec::new();
        let mut orchestrator = None;
        for (t, n) in stack.ordered() {
            let c = self.component_or_err(t, &n)?;
            let b = self.bind(&c, false)?;
            let target = b.target(self.sandbox()?);
            // A flavor built against 0.1.0 was promised the user's pairs only.
            let given = if b.loaded.wit_version() == "0.1.0" {
                &runtime
            } else {
                &told
            };
            let called = target.prepare(&b.ctx, given)?;
            self.note_logs(
                &format!("{t} `{n}` prepare-pipeline-deployment"),
                &called.logs,
                called.dropped_logs,
            );
            logs.extend(
                called
                    .logs
                    .iter()
                    .map(|l| format!("{} `{}`: {}: {}", t.label(), n, l.level, l.message)),
            );
            called.value.map_err(|message| Error::Flavor {
                subject: format!("{} `{n}` (flavor `{}`)", t.label(), b.f.info.name),
                call: "prepare-pipeline-deployment".into(),
                message,
            })?;
            prepared.push(format!("{t}/{n}"));
            if t == ComponentType::Orchestrator {
                orchestrator = Some((c, b));
            }
        }
        let (c, b) = orchestrator.ok_or_else(|| {
            Error::invalid(
                format!("stack `{stack_name}` has no orchestrator"),
                "add one with `strata stack update`",
            )
        })?;
        let target = b.target(self.sandbox()?);
        let called = target.launch(&b.ctx, run_id, &pipeline.name, &pipeline.steps, &runtime)?;
        self.note_logs(
            &format!("orchestrator `{}` launch", c.name),
            &called.logs,
            called.dropped_logs,
        );
        logs.extend(
            called
                .logs
                .iter()
                .map(|l| format!("orchestrator `{}`: {}: {}", c.name, l.level, l.message)),
        );
        let subject = format!("orchestrator `{}` (flavor `{}`)", c.name, b.f.info.name);
        let launch = called.value.map_err(|message| Error::Flavor {
            subject: subject.clone(),
            call: "launch".into(),
            message,
        })?;
        check_schedule(&pipeline.steps, &launch.schedule).map_err(|why| Error::Flavor {
            subject,
            call: "launch".into(),
            message: format!("it reported a schedule strata cannot follow: {why}"),
        })?;
        Ok((prepared, c.name, launch, logs))
    }
}
