//! strata's `local` orchestrator: runs a pipeline's steps on this machine, in order, one
//! step at a time.
//!
//! It is the orchestrator of the default stack, a WebAssembly component built against the
//! `orchestrator-flavor` world. It has no configuration and creates nothing outside
//! strata: its lifecycle only records, in the state strata keeps for it, whether it is
//! provisioned and running. `launch` checks a run's steps (unique names, known upstream
//! steps, no cycles) and orders them into waves with Kahn's algorithm; strata then runs
//! the waves one after another.

mod schedule;

wit_bindgen::generate!({
    path: "../../wit",
    world: "strata:flavor/orchestrator-flavor",
    generate_all,
});

use exports::strata::flavor::lifecycle::{Guest as Lifecycle, StateResult};
use exports::strata::flavor::orchestrator::{Deployment, Guest as Orchestrator, LaunchReport};
use schedule::StepRef;
use serde::{Deserialize, Serialize};
use strata::flavor::host::log;
use strata::flavor::types::{ComponentType, Context, FieldError, FlavorInfo, Level, Status};
use strata_flavor_sdk::State;

/// What the orchestrator remembers between calls.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OrchestratorState {
    /// `provision` succeeded and `deprovision` has not run since.
    #[serde(default)]
    provisioned: bool,
    /// `resume` ran more recently than `suspend`: runs may be launched.
    #[serde(default)]
    running: bool,
}

/// Reads the state strata handed back with `ctx`.
fn load(ctx: &Context) -> Result<OrchestratorState, String> {
    State::<OrchestratorState>::decode(ctx.state.as_deref())
}

/// Encodes `state` as the new state to hand back to strata.
fn save(state: &OrchestratorState) -> StateResult {
    State::encode(state).map(Some)
}

/// `1 step`, `3 steps`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The `local` orchestrator.
struct LocalOrchestrator;

impl Lifecycle for LocalOrchestrator {
    fn describe() -> FlavorInfo {
        FlavorInfo {
            name: "local".to_string(),
            component_type: ComponentType::Orchestrator,
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Runs pipelines on this machine, in order, one step at a time."
                .to_string(),
            config: Vec::new(),
            supported_schemes: Vec::new(),
            requirements: Vec::new(),
            origins: Vec::new(),
        }
    }

    fn validate(_config: Vec<(String, String)>) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    fn provision(ctx: Context) -> StateResult {
        let mut state = load(&ctx)?;
        state.provisioned = true;
        save(&state)
    }

    fn deprovision(ctx: Context) -> StateResult {
        // Nothing exists outside the state; even an unreadable state is simply replaced.
        if let Err(message) = load(&ctx) {
            log(
                Level::Warn,
                &format!("discarding the previous state on deprovision: {message}"),
            );
        }
        save(&OrchestratorState::default())
    }

    fn resume(ctx: Context) -> StateResult {
        let mut state = load(&ctx)?;
        if !state.provisioned {
            return Err(format!(
                "orchestrator `{}` is not provisioned: run `strata stack up`, which \
                 provisions it before starting it",
                ctx.component_name
            ));
        }
        state.running = true;
        save(&state)
    }

    fn suspend(ctx: Context) -> StateResult {
        let mut state = load(&ctx)?;
        state.running = false;
        save(&state)
    }

    fn status(ctx: Context) -> Status {
        match load(&ctx) {
            Err(message) => Status {
                provisioned: false,
                running: false,
                detail: message,
            },
            Ok(state) => {
                let detail = match (state.provisioned, state.running) {
                    (true, true) => {
                        "running: pipelines run on this machine, one step at a time".to_string()
                    }
                    (true, false) => {
                        "provisioned but suspended: run `strata stack up` to start it".to_string()
                    }
                    (false, _) => "not provisioned: run `strata stack up`".to_string(),
                };
                Status {
                    provisioned: state.provisioned,
                    running: state.provisioned && state.running,
                    detail,
                }
            }
        }
    }

    fn prepare_pipeline_deployment(
        _ctx: Context,
        runtime: Vec<(String, String)>,
    ) -> Result<(), String> {
        if let Some(position) = runtime.iter().position(|(key, _)| key.trim().is_empty()) {
            return Err(format!(
                "runtime configuration entry number {} has an empty key: write every entry \
                 as KEY=VALUE",
                position + 1
            ));
        }
        let line = if runtime.is_empty() {
            "received no runtime configuration".to_string()
        } else {
            let keys: Vec<&str> = runtime.iter().map(|(key, _)| key.as_str()).collect();
            format!("received runtime configuration keys: {}", keys.join(", "))
        };
        log(Level::Info, &line);
        Ok(())
    }
}

impl Orchestrator for LocalOrchestrator {
    fn launch(ctx: Context, run: Deployment) -> Result<LaunchReport, String> {
        let state = load(&ctx)?;
        if !(state.provisioned && state.running) {
            return Err(format!(
                "orchestrator `{}` is not running: run `strata stack up`",
                ctx.component_name
            ));
        }

        let steps: Vec<StepRef<'_>> = run
            .steps
            .iter()
            .map(|step| StepRef {
                name: &step.name,
                upstream: &step.upstream,
            })
            .collect();
        let schedule = schedule::plan(&steps).map_err(|message| {
            format!(
                "cannot launch run {} of pipeline `{}`: {message}",
                run.run_id, run.pipeline_name
            )
        })?;

        let detail = format!(
            "{} in {}",
            count(run.steps.len(), "step"),
            count(schedule.len(), "wave")
        );
        let waves: Vec<String> = schedule
            .iter()
            .enumerate()
            .map(|(index, wave)| format!("wave {}: {}", index + 1, wave.join(", ")))
            .collect();
        log(
            Level::Info,
            &format!(
                "run {} of pipeline `{}`: {detail}{}{}",
                run.run_id,
                run.pipeline_name,
                if waves.is_empty() { "" } else { "; " },
                waves.join("; ")
            ),
        );

        Ok(LaunchReport {
            orchestrator_run_id: format!("local-{}", run.run_id),
            schedule,
            detail,
        })
    }
}

export!(LocalOrchestrator);
