//! `mlflow`: a strata experiment tracker on an MLflow tracking server.
//!
//! Each component is one MLflow **experiment** on one server; each pipeline run becomes
//! one MLflow **run** in it, tagged with strata's run id, pipeline and stack, with the
//! run's runtime parameters as its parameters. It speaks MLflow's REST API 2.0
//! (`/api/2.0/mlflow/…`, JSON) over `wasi:http`, and needs nothing else: no MLflow
//! client, no Python.
//!
//! It is built against the `experiment-tracker-flavor` world: besides the lifecycle, it
//! tells a run's steps where to log (`step-environment`) and closes the run when the
//! pipeline ends (`finish-run`).
//!
//! # Configuration
//!
//! | field | kind | |
//! |---|---|---|
//! | `tracking_uri` | url | The MLflow server, like `http://127.0.0.1:5000` (a path is kept: `https://host/mlflow`). Optional when a service connector is bound. |
//! | `experiment_name` | text, required | The experiment: not blank, at most 500 characters. |
//! | `artifact_location` | text | Where MLflow stores the experiment's artifacts, if strata creates it (`s3://bucket/path`); the server's default otherwise. |
//!
//! **Credentials** come from a service connector, never from a field: a server behind
//! a token or a password is reached by binding the component to a `bearer` or `basic`
//! connector (`--connector=NAME`); strata adds the `Authorization` header to every
//! request to the connector's endpoint, and the flavor never sees it. The server is
//! `tracking_uri` if given, else the connector's endpoint; with both, they must be the
//! same origin (scheme, host, port), or every call fails saying so (`validate` cannot
//! tell: it never sees the connector). A `tracking_uri` holding `user:password@` is
//! refused.
//!
//! # What each step does
//!
//! - **validate** (`register`, `update`): checks `experiment_name` (not blank, at most
//!   500 characters) and `tracking_uri` (no user or password in it, no query or
//!   fragment). No network.
//! - **provision** (`up`, when `status` says the experiment is missing or deleted):
//!   looks the experiment up by name (`GET experiments/get-by-name`).
//!   - it does not exist: strata **creates** it (`POST experiments/create`, with
//!     `artifact_location` if given), tagged `strata.component_id` = the component's id;
//!   - it exists but was deleted (MLflow keeps deleted experiments, and their names):
//!     strata **restores** it (`POST experiments/restore`), runs included;
//!   - it exists and is active (made meanwhile): strata **adopts** it, changing nothing.
//!
//!   The state remembers the experiment's id, and whether this component created it
//!   (it did if the experiment carries its `strata.component_id` tag, so a state lost to
//!   a crash, or an experiment restored after `down --force`, still counts as its own).
//!   Running it again finds the experiment and changes nothing.
//! - **resume** (`up`): looks the experiment up by name. One deleted since (by hand,
//!   say) is restored; one missing is an error asking for `up` (which provisions it
//!   again). An experiment that existed before strata's first `up` is found here: `status`
//!   calls it provisioned, so `up` resumes without provisioning, and resume **adopts**
//!   it (a log line says so). MLflow has nothing to start. In both provision and resume,
//!   an `artifact_location` that differs from the existing experiment's gets a warning:
//!   MLflow cannot move it.
//! - **suspend** (`down`): changes nothing, and logs "the experiment stays; MLflow has
//!   nothing to stop". Deleting the experiment here would hide all its runs until the
//!   next `up`: a suspended tracker keeps its data visible.
//! - **deprovision** (`down --force`): deletes the experiment (`POST
//!   experiments/delete`) **only if this component created it**; an adopted experiment
//!   is left as it is, and a log line says so. MLflow's delete is a soft delete: the
//!   experiment and its runs stay in MLflow's store, hidden, until its garbage
//!   collection (`mlflow gc`); the next `up` restores it. An experiment already deleted
//!   or gone counts as removed.
//! - **status** (`up`, `down`, `describe`): looks the experiment up by name and changes
//!   nothing. Provisioned: it exists and is active; running: provisioned and resumed
//!   (not suspended since). Detail: `` experiment `NAME` (id N) at URL: active ``
//!   (or `deleted`, or `missing`), or why the server could not be asked.
//! - **prepare-pipeline-deployment** (`pipeline run`): looks the experiment up by name
//!   (it must exist and be active: otherwise run `up`), creates a run in it (`POST
//!   runs/create`) named `PIPELINE-RUNID` (the pipeline's name, the first 8 characters of
//!   strata's run id), started now and tagged `strata.run_id`, `strata.pipeline` and
//!   `strata.stack`, then logs every runtime parameter but strata's own `strata.*` keys
//!   as the run's parameters (`POST runs/log-batch`, a hundred per request). A log line
//!   gives the run's id and its page: `TRACKING_URI/#/experiments/EXP/runs/RUN`. If the
//!   parameters are refused (MLflow allows only letters, digits, `_`, `-`, `.`, `:`,
//!   `/` and spaces in a key), the run is marked `FAILED` and the pipeline run does not
//!   start. A run takes at most 5,000 parameters. The MLflow run stays `RUNNING` until
//!   `finish-run`.
//! - **step-environment** (`pipeline run`, once, before the first step): finds the
//!   MLflow run of strata's run: looks the experiment up by name (it must be active),
//!   then searches it for its newest active run tagged `strata.run_id` = the run's id
//!   (`POST runs/search`, filter `` tags.`strata.run_id` = 'RUNID' ``). Every step
//!   gets:
//!
//!   | variable | value |
//!   |---|---|
//!   | `MLFLOW_TRACKING_URI` | the server's base URL (`tracking_uri`, else the connector's endpoint), without user, password, query or fragment |
//!   | `MLFLOW_EXPERIMENT_ID` | the experiment's id |
//!   | `MLFLOW_EXPERIMENT_NAME` | `experiment_name` |
//!   | `MLFLOW_RUN_ID` | the MLflow run's id |
//!
//!   so `mlflow.start_run()` in a step's code resumes the pipeline's run, and
//!   `mlflow.log_metric(…)` logs into it. No credential is among them: a server behind
//!   a connector's token or password needs the step to bring its own (MLflow reads
//!   `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and `…_PASSWORD`), as strata
//!   adds the connector's credentials to the flavor's requests only. No such run (deleted
//!   in MLflow, or the run started before this tracker was in the stack) is an error
//!   saying so.
//! - **finish-run** (`pipeline run`, when the run ends): finds the run the same way and
//!   sets its status (`POST runs/update`): `completed` → `FINISHED`, `failed` →
//!   `FAILED`, `cancelled` → `KILLED`, with `end_time` now (the wall clock, in ms). Any
//!   other status is an error, sent nowhere. It says `run RUN of experiment `NAME`
//!   marked FINISHED`. A step that ended the run itself (`mlflow.end_run()`) is
//!   overwritten: the pipeline's end decides.
//!
//! Every call makes a handful of requests (a run with N parameters: 2 + N/100;
//! `step-environment` 2, `finish-run` 3), all
//! bounded by the call's deadline (and strata's 64 requests per call). Every error is one line: what failed (the
//! experiment, the request), the server's answer (its HTTP status and MLflow's own
//! `ERROR_CODE: message`), and what to do; a server that does not answer is named by
//! its URL, with "the MLflow server may be down".

mod api;

// The `experiment-tracker-flavor` world exports a second interface, so the flavor
// generates its own bindings, through the SDK's wit-bindgen, with every imported
// interface mapped onto the SDK's (one `Context`, one `log`, and `http` as it is).
strata_flavor_sdk::wit_bindgen::generate!({
    path: "../../wit",
    world: "strata:flavor/experiment-tracker-flavor",
    runtime_path: "strata_flavor_sdk::rt",
    with: {
        "strata:flavor/types@0.2.0": strata_flavor_sdk::bindings::strata::flavor::types,
        "strata:flavor/host@0.2.0": strata_flavor_sdk::bindings::strata::flavor::host,
        "wasi:http/types@0.2.12": strata_flavor_sdk::bindings::wasi::http::types,
        "wasi:http/outgoing-handler@0.2.12": strata_flavor_sdk::bindings::wasi::http::outgoing_handler,
        "wasi:io/poll@0.2.12": strata_flavor_sdk::bindings::wasi::io::poll,
        "wasi:io/error@0.2.12": strata_flavor_sdk::bindings::wasi::io::error,
        "wasi:io/streams@0.2.12": strata_flavor_sdk::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": strata_flavor_sdk::bindings::wasi::clocks::monotonic_clock,
    },
});

use serde::{Deserialize, Serialize};
use strata_flavor_sdk::Context;
use strata_flavor_sdk::endpoint;
use strata_flavor_sdk::prelude::*;

use api::{CREATOR_TAG, Experiment, Mlflow, RUN_TAG, SERVICE};
use endpoint::Server;
use exports::strata::flavor::experiment_tracker;

/// The longest `experiment_name` accepted.
const MAX_NAME: usize = 500;

struct MlflowTracker;

/// A component's configuration, read.
struct Settings {
    /// `tracking_uri`, else the connector's endpoint; `None` if neither is given.
    server: Option<Server>,
    experiment: String,
    artifact_location: Option<String>,
}

/// What strata keeps for a component between calls.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Remembered {
    /// The experiment's id, once provisioned.
    #[serde(default)]
    experiment_id: Option<String>,
    /// This component created the experiment (so `deprovision` deletes it).
    #[serde(default)]
    created: bool,
}

impl Flavor for MlflowTracker {
    type Settings = Settings;
    type State = Remembered;

    fn info() -> Info {
        Info::new("mlflow", ComponentType::ExperimentTracker)
            .version(env!("CARGO_PKG_VERSION"))
            .description(
                "Tracks experiments on an MLflow tracking server (REST API 2.0): one MLflow \
                 experiment per component, created, adopted or restored by `up`, and one \
                 MLflow run per pipeline run, with the run's parameters. Credentials come \
                 from a `bearer` or `basic` service connector.",
            )
            .field(Field::url(
                "tracking_uri",
                "The MLflow tracking server, like http://127.0.0.1:5000; optional if a \
                 service connector is bound (its endpoint is the server).",
            ))
            .field(
                Field::text(
                    "experiment_name",
                    "The MLflow experiment this component tracks runs in (at most 500 \
                     characters); created if missing.",
                )
                .required(),
            )
            .field(Field::text(
                "artifact_location",
                "Where MLflow keeps the artifacts of an experiment strata creates, like \
                 s3://bucket/mlflow; the server's default if not given.",
            ))
    }

    fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
        let experiment = config.get("experiment_name").unwrap_or_default();
        if experiment.trim().is_empty() {
            problems.field(
                "experiment_name",
                "`experiment_name` is empty: name the MLflow experiment, like \
                 `--experiment_name=training`",
            );
        } else if experiment.chars().count() > MAX_NAME {
            problems.field(
                "experiment_name",
                format!(
                    "`experiment_name` is {} characters long: MLflow takes at most {MAX_NAME}",
                    experiment.chars().count()
                ),
            );
        }
        let server = endpoint::read(config, SERVICE, problems);
        let artifact_location = config
            .get("artifact_location")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        problems.is_empty().then(|| Settings {
            server,
            experiment: experiment.to_string(),
            artifact_location,
        })
    }

    fn provision(call: &mut Call<'_, Self>) -> Result<()> {
        let server = server(call)?;
        let mlflow = Mlflow { server };
        let name = &call.settings.experiment;
        let at = &server.base;
        match mlflow.experiment_by_name(name)? {
            Some(found) => {
                let created = created_by(call, &found);
                if found.is_active() {
                    if created {
                        info!(
                            "experiment `{name}` (id {}) at {at} is there already",
                            found.experiment_id
                        );
                    } else {
                        info!(
                            "adopted the existing experiment `{name}` (id {}) at {at}: strata \
                             did not create it and will not delete it",
                            found.experiment_id
                        );
                    }
                } else {
                    mlflow.restore_experiment(&found.experiment_id, name)?;
                    info!(
                        "restored the deleted experiment `{name}` (id {}) at {at}",
                        found.experiment_id
                    );
                }
                warn_location(call, &found);
                call.state.experiment_id = Some(found.experiment_id);
                call.state.created = created;
            }
            None => {
                let location = call.settings.artifact_location.as_deref();
                let id = mlflow.create_experiment(name, location, call.component_id)?;
                info!("created experiment `{name}` (id {id}) at {at}");
                call.state.experiment_id = Some(id);
                call.state.created = true;
            }
        }
        Ok(())
    }

    fn resume(call: &mut Call<'_, Self>) -> Result<()> {
        let server = server(call)?;
        let mlflow = Mlflow { server };
        let name = &call.settings.experiment;
        let Some(found) = mlflow.experiment_by_name(name)? else {
            return Err(Error::new(format!(
                "experiment `{name}` is missing at {}: there is nothing to resume",
                server.base
            ))
            .with_hint(format!("run {} to create it again", call.command("up"))));
        };
        if !found.is_active() {
            mlflow.restore_experiment(&found.experiment_id, name)?;
            info!(
                "restored the deleted experiment `{name}` (id {}) at {}",
                found.experiment_id, server.base
            );
        }
        if call.state.experiment_id.as_deref() != Some(found.experiment_id.as_str()) {
            // Found by `status`, so never provisioned: made by someone else, adopted.
            let created = created_by(call, &found);
            if !created {
                info!(
                    "adopted the existing experiment `{name}` (id {}) at {}: strata did not \
                     create it and will not delete it",
                    found.experiment_id, server.base
                );
            }
            warn_location(call, &found);
            call.state.created = created;
            call.state.experiment_id = Some(found.experiment_id);
        }
        Ok(())
    }

    fn suspend(call: &mut Call<'_, Self>) -> Result<()> {
        info!(
            "the experiment stays; MLflow has nothing to stop (experiment `{}`)",
            call.settings.experiment
        );
        Ok(())
    }

    fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
        let name = &call.settings.experiment;
        let Some(id) = call.state.experiment_id.clone() else {
            info!("no experiment was provisioned: nothing to remove");
            return Ok(());
        };
        if !call.state.created {
            info!(
                "left experiment `{name}` (id {id}) in place: strata adopted it, did not \
                 create it"
            );
            return Ok(());
        }
        let server = server(call)?;
        let mlflow = Mlflow { server };
        match mlflow.experiment(&id)? {
            None => info!("experiment `{name}` (id {id}) is gone already"),
            Some(found) if !found.is_active() => {
                info!("experiment `{name}` (id {id}) is deleted already")
            }
            Some(found)
                if found
                    .tag(CREATOR_TAG)
                    .is_some_and(|c| c != call.component_id) =>
            {
                info!("left experiment {id} in place: another strata component created it")
            }
            Some(found) => {
                if mlflow.delete_experiment(&id, &found.name)? {
                    info!(
                        "deleted experiment `{}` (id {id}) at {}: MLflow keeps it and its \
                         runs, hidden, until `mlflow gc`; `up` restores it",
                        found.name, server.base
                    );
                } else {
                    info!("experiment `{name}` (id {id}) is gone already");
                }
            }
        }
        Ok(())
    }

    fn status(call: &Call<'_, Self>) -> Status {
        let server = match server(call) {
            Ok(server) => server,
            Err(err) => return Status::not_provisioned(err.to_string()),
        };
        let name = &call.settings.experiment;
        match (Mlflow { server }).experiment_by_name(name) {
            // The server cannot say: the phase strata recorded stands, so that `down
            // --force` still tries (and names the server that is down) rather than
            // skipping a deprovision it cannot know is done.
            Err(err) if call.phase().provisioned => Status::provisioned(
                call.phase().running,
                format!("{err} (the phase shown is the last one recorded)"),
            ),
            Err(err) => Status::not_provisioned(err.to_string()),
            Ok(None) => {
                Status::not_provisioned(format!("experiment `{name}` at {}: missing", server.base))
            }
            Ok(Some(found)) => {
                let detail = format!(
                    "experiment `{name}` (id {}) at {}: {}",
                    found.experiment_id,
                    server.base,
                    found.stage()
                );
                if found.is_active() {
                    Status::provisioned(call.phase().running, detail)
                } else {
                    Status::not_provisioned(detail)
                }
            }
        }
    }

    fn prepare_pipeline_deployment(call: &Call<'_, Self>, runtime: &Config<'_>) -> Result<()> {
        let server = server(call)?;
        let mlflow = Mlflow { server };
        let name = &call.settings.experiment;
        let experiment = match mlflow.experiment_by_name(name)? {
            Some(found) if found.is_active() => found,
            other => {
                let stage = other.map_or("missing", |e| e.stage());
                return Err(Error::new(format!(
                    "experiment `{name}` at {} is {stage}: the run has nowhere to be \
                     recorded",
                    server.base
                ))
                .with_hint(format!(
                    "run `strata stack up` (or {}) to provision it",
                    call.command("up")
                )));
            }
        };
        let id = &experiment.experiment_id;
        let params = api::run_params(runtime.pairs());
        let most = api::PARAMS_PER_BATCH * 50;
        if params.len() > most {
            return Err(Error::new(format!(
                "the run has {} runtime parameters: MLflow is sent at most {most} in one call",
                params.len()
            ))
            .with_hint("pass fewer `--param KEY=VALUE`"));
        }
        let body = api::run_request(id, runtime.pairs(), api::now_ms());
        let run_name = body["run_name"].as_str().unwrap_or_default().to_string();
        let run = mlflow.create_run(&body, name)?;
        if let Err(err) = mlflow.log_params(&run, &params) {
            if let Err(also) = mlflow.fail_run(&run) {
                warn!("{also}");
            }
            return Err(err);
        }
        info!(
            "MLflow run {run} (`{run_name}`, {} parameter{}) in experiment `{name}`: {}",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            api::run_page(server, id, &run)
        );
        Ok(())
    }
}

/// The component's server, or the error of one that names none.
fn server<'c>(call: &'c Call<'_, MlflowTracker>) -> Result<&'c Server> {
    endpoint::require(call.settings.server.as_ref(), SERVICE, call.component_name)
}

/// Whether this component created `found`: its tag says so, or the state does.
fn created_by(call: &Call<'_, MlflowTracker>, found: &Experiment) -> bool {
    match found.tag(CREATOR_TAG) {
        Some(creator) => creator == call.component_id,
        None => {
            call.state.created
                && call.state.experiment_id.as_deref() == Some(found.experiment_id.as_str())
        }
    }
}

/// A warning if `artifact_location` is not where the existing experiment keeps its
/// artifacts (MLflow cannot move them).
fn warn_location(call: &Call<'_, MlflowTracker>, found: &Experiment) {
    if let Some(wanted) = &call.settings.artifact_location
        && wanted.trim_end_matches('/') != found.artifact_location.trim_end_matches('/')
    {
        warn!(
            "experiment `{}` keeps its artifacts in {}, not in `artifact_location` ({wanted}): \
             MLflow cannot move an existing experiment's artifacts",
            found.name, found.artifact_location
        );
    }
}

strata_flavor_sdk::impl_lifecycle!(MlflowTracker, exports::strata::flavor::lifecycle::Guest);

impl experiment_tracker::Guest for MlflowTracker {
    fn step_environment(
        ctx: Context,
        run_id: String,
    ) -> std::result::Result<Vec<(String, String)>, String> {
        let call = Call::<MlflowTracker>::new(&ctx)?;
        Ok(step_environment(&call, &run_id)?)
    }

    fn finish_run(
        ctx: Context,
        run_id: String,
        status: String,
    ) -> std::result::Result<String, String> {
        let call = Call::<MlflowTracker>::new(&ctx)?;
        Ok(finish_run(&call, &run_id, &status)?)
    }
}

/// The variables a step of strata run `run_id` logs into its MLflow run with: the
/// server (no credentials: strata's gate adds them to the flavor's requests only), the
/// experiment, and the run, which `mlflow.start_run()` then resumes.
fn step_environment(call: &Call<'_, MlflowTracker>, run_id: &str) -> Result<Vec<(String, String)>> {
    let server = server(call)?;
    let (experiment, run) = find_run(call, server, run_id)?;
    Ok(vec![
        ("MLFLOW_TRACKING_URI".into(), api::public_uri(&server.base)),
        ("MLFLOW_EXPERIMENT_ID".into(), experiment.experiment_id),
        ("MLFLOW_EXPERIMENT_NAME".into(), experiment.name),
        ("MLFLOW_RUN_ID".into(), run),
    ])
}

/// Sets the status of strata run `run_id`'s MLflow run as `status` says, ended now.
fn finish_run(call: &Call<'_, MlflowTracker>, run_id: &str, status: &str) -> Result<String> {
    let Some(mlflow_status) = api::run_status(status) else {
        return Err(Error::new(format!(
            "cannot close the MLflow run of strata run {run_id} as `{status}`: this flavor \
             knows `completed`, `failed` and `cancelled`"
        ))
        .with_hint("strata is newer than this flavor: register a newer mlflow flavor"));
    };
    let server = server(call)?;
    let (experiment, run) = find_run(call, server, run_id)?;
    Mlflow { server }.update_run(&run, mlflow_status)?;
    Ok(format!(
        "run {run} of experiment `{}` marked {mlflow_status}",
        experiment.name
    ))
}

/// The component's experiment, active, and the id of the MLflow run tagged with
/// strata's `run_id` in it (the newest, were there several).
fn find_run(
    call: &Call<'_, MlflowTracker>,
    server: &Server,
    run_id: &str,
) -> Result<(Experiment, String)> {
    let mlflow = Mlflow { server };
    let name = &call.settings.experiment;
    let Some(filter) = api::run_filter(run_id) else {
        return Err(Error::new(format!(
            "strata run id `{run_id}` cannot be searched for in MLflow: it is empty or holds \
             a quote, a backtick, a backslash or a control character"
        )));
    };
    let experiment = match mlflow.experiment_by_name(name)? {
        Some(found) if found.is_active() => found,
        other => {
            let stage = other.map_or("missing", |e| e.stage());
            return Err(Error::new(format!(
                "experiment `{name}` at {} is {stage}: it holds no MLflow run of strata run \
                 {run_id}",
                server.base
            ))
            .with_hint(format!(
                "run `strata stack up` (or {}) to provision it, then run the pipeline again",
                call.command("up")
            )));
        }
    };
    match mlflow.find_run(&experiment.experiment_id, &filter)? {
        Some(run) => Ok((experiment, run)),
        None => Err(Error::new(format!(
            "experiment `{name}` (id {}) at {} has no active run tagged `{RUN_TAG}` = \
             `{run_id}`",
            experiment.experiment_id, server.base
        ))
        .with_hint(
            "the tracker creates it when the pipeline run starts: it was deleted in MLflow \
             (restore it there), or the run started without this tracker in its stack; run \
             the pipeline again",
        )),
    }
}

export!(MlflowTracker);

#[cfg(test)]
mod tests;
