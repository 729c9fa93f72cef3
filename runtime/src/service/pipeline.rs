//! Pipeline runs: the runtime configuration is handed to every component of the active
//! stack (`prepare-pipeline-deployment`, orchestrator last), then the run goes to the
//! orchestrator (`launch`), as ZenML's `pipeline.run(runtime_param=…)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Service;
use crate::error::{Error, Result};
use crate::model::ComponentType;
use crate::sandbox::calls::{LaunchReport, PipelineStep};

/// A pipeline definition, as read from YAML or JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub steps: Vec<PipelineStep>,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub pipeline: String,
    pub stack: String,
    /// The components that received the runtime configuration, in order.
    pub prepared: Vec<String>,
    pub orchestrator: String,
    pub launch: LaunchReport,
    pub logs: Vec<String>,
}

/// Every name and key of a run follows the rule of every name: printable, never a
/// control character (they reach the orchestrator, and come back in its report).
fn check_names(pipeline: &Pipeline, runtime: &BTreeMap<String, String>) -> Result<()> {
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
    }
    Ok(())
}

impl Service {
    /// Runs `pipeline` on the active stack with the runtime configuration `runtime`.
    pub fn pipeline_run(
        &self,
        pipeline: &Pipeline,
        runtime: BTreeMap<String, String>,
    ) -> Result<RunReport> {
        if pipeline.name.trim().is_empty() {
            return Err(Error::invalid(
                "the pipeline has no name",
                "give it `name: my_pipeline`",
            ));
        }
        check_names(pipeline, &runtime)?;
        let stack_name = self.stack_get()?;
        let stack = self.stack_or_err(&stack_name)?;
        self.check_stack(&stack)?;
        let runtime: Vec<(String, String)> = runtime.into_iter().collect();
        let run_id = super::new_id();
        let mut prepared = Vec::new();
        let mut logs = Vec::new();
        let mut orchestrator = None;
        for (t, n) in stack.ordered() {
            let c = self.component_or_err(t, &n)?;
            let b = self.bind(&c, false)?;
            let target = b.target(self.sandbox()?);
            let called = target.prepare(&b.ctx, &runtime)?;
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
        let called = target.launch(&b.ctx, &run_id, &pipeline.name, &pipeline.steps, &runtime)?;
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
        let launch = called.value.map_err(|message| Error::Flavor {
            subject: format!("orchestrator `{}` (flavor `{}`)", c.name, b.f.info.name),
            call: "launch".into(),
            message,
        })?;
        Ok(RunReport {
            run_id,
            pipeline: pipeline.name.clone(),
            stack: stack_name,
            prepared,
            orchestrator: c.name,
            launch,
            logs,
        })
    }
}
