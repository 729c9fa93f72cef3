//! The [`Flavor`] trait, and the glue that turns it into the lifecycle strata calls.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bindings::exports::strata::flavor::lifecycle::Guest;
use crate::bindings::strata::flavor::types::{
    Context, FieldError, FlavorInfo, StateResult, Status,
};
use crate::info::type_name;
use crate::{Config, Error, Info, Problem, Problems, Result, State};

/// A flavor: what it says about itself, how it reads its configuration, and what each
/// lifecycle call does. Implement it on a unit struct and call [`export!`](crate::export)
/// with that struct; this crate writes the rest of the `flavor` world.
///
/// What the trait takes care of, for every flavor:
/// - **State.** Each call runs in a fresh instance, so the trait's `State` is decoded
///   from what strata hands back at the start of every call and encoded again when a
///   call succeeds. Along with it this crate records the [`Phase`] the lifecycle reached
///   (provisioned, running), so the default [`Flavor::status`] can report it.
///   `deprovision` succeeding brings both back to `State::default()` and a blank phase:
///   the component is as if never provisioned.
/// - **Configuration.** [`Flavor::settings`] reads the fields once into your own
///   `Settings` type, reporting every problem it finds. strata's `validate` is exactly
///   that call, and every other call gets the settings already read ([`Call::settings`]).
/// - **Errors.** Lifecycle calls return [`Error`], which `?` makes from an `io::Error`
///   or a `String`; strata shows it with its hint. A panic traps, which strata reports as
///   a bug in the flavor.
///
/// The rules of strata's lifecycle, which the implementation must keep:
/// - `provision`, `resume`, `suspend` and `deprovision` must be **idempotent**: after a
///   crash or a timeout strata calls one again without knowing how far it got (create a
///   file only if it is missing; treat "already gone" as removed).
/// - Touch only the directories of the component's `path` fields: nothing else is
///   visible in the sandbox.
/// - `status` must change nothing, and must report what the other calls did: `up` and
///   `down` act on its answer.
pub trait Flavor: Sized + 'static {
    /// The configuration as your code uses it, read by [`Flavor::settings`]: a struct of
    /// typed values (a `PathBuf`, a level, a count), or `()` if the flavor has no fields.
    type Settings;

    /// What the flavor remembers between calls, kept by strata as JSON. A new component
    /// starts from `State::default()`; mark added fields `#[serde(default)]` so a newer
    /// flavor still reads the state an older one stored.
    type State: Serialize + DeserializeOwned + Default;

    /// Says what the flavor is (`describe`): name, type, version, configuration fields.
    /// strata calls it once, at registration; it must depend on nothing but the code.
    fn info() -> Info;

    /// Reads a configuration into [`Flavor::Settings`], recording in `problems` every
    /// problem found (not just the first), and returns the settings if there were none.
    ///
    /// strata has already checked names, kinds, required fields and schemes, and filled
    /// in defaults; check what the schema cannot say (ranges, formats, fields that go
    /// together). Called by `validate` at every `register` and `update`, before anything
    /// is stored, and at the start of every other call. It gets no grants: read values,
    /// do not touch files.
    ///
    /// [`Problems::check`] records a failed getter and gives an `Option`, so the usual
    /// shape is: check every field, then build the settings with `?`.
    fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Self::Settings>;

    /// Creates what the component needs, inside its grants. Called by `up` when
    /// `status` says the component is not provisioned; `resume` comes next.
    ///
    /// # Errors
    /// What could not be created, and what to do about it.
    fn provision(call: &mut Call<'_, Self>) -> Result<()>;

    /// Removes what `provision` created, and only that. Called by `down --force`, after
    /// `suspend`. Afterwards the state is `State::default()` again.
    ///
    /// # Errors
    /// What could not be removed, and what to do about it.
    fn deprovision(call: &mut Call<'_, Self>) -> Result<()>;

    /// Starts the provisioned component, so it can serve a pipeline. Called by `up`
    /// after `provision`, and on every `up` of a suspended component.
    ///
    /// The default refuses a component that is not provisioned and otherwise does
    /// nothing (the phase becomes running).
    ///
    /// # Errors
    /// What could not be started, and what to do about it.
    fn resume(call: &mut Call<'_, Self>) -> Result<()> {
        if call.phase().provisioned {
            Ok(())
        } else {
            Err(
                Error::new(format!("`{}` is not provisioned", call.component_name))
                    .with_hint(format!("run {}", call.command("up"))),
            )
        }
    }

    /// Stops the component without removing anything. Called by `down` on a running
    /// component. The default does nothing (the phase stops being running).
    ///
    /// # Errors
    /// What could not be stopped, and what to do about it.
    fn suspend(call: &mut Call<'_, Self>) -> Result<()> {
        let _ = call;
        Ok(())
    }

    /// Reports what exists now, changing nothing. Called at the start of every `up` and
    /// `down`, and by `describe` of a component, any number of times.
    ///
    /// The default reports the recorded [`Phase`]. Override it to look at what really
    /// exists (a file in the grant), so that `up` repairs what was removed behind
    /// strata's back.
    fn status(call: &Call<'_, Self>) -> Status {
        call.phase().status()
    }

    /// Accepts or refuses the runtime configuration of a pipeline run (`key=value`
    /// pairs), once per run, before it starts. It hands back no state. The default
    /// accepts every run.
    ///
    /// # Errors
    /// Why the run must not start.
    fn prepare_pipeline_deployment(call: &Call<'_, Self>, runtime: &Config<'_>) -> Result<()> {
        let _ = (call, runtime);
        Ok(())
    }
}

/// How far the lifecycle of a component got, as recorded by this crate after each call
/// that succeeded: `provision` sets `provisioned`, `resume` sets `running`, `suspend`
/// clears `running`, and `deprovision` clears both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Phase {
    /// `provision` succeeded, and `deprovision` has not since.
    pub provisioned: bool,
    /// `resume` succeeded more recently than `suspend`.
    pub running: bool,
}

impl Phase {
    /// The status this phase stands for: `running`, `provisioned, suspended` or
    /// `not provisioned`.
    pub fn status(self) -> Status {
        let running = self.provisioned && self.running;
        let detail = match (self.provisioned, running) {
            (true, true) => "running",
            (true, false) => "provisioned, suspended",
            (false, _) => "not provisioned",
        };
        Status {
            provisioned: self.provisioned,
            running,
            detail: detail.to_string(),
        }
    }
}

impl Status {
    /// Nothing of the component exists: `detail` says what is missing.
    pub fn not_provisioned(detail: impl Into<String>) -> Status {
        Status {
            provisioned: false,
            running: false,
            detail: detail.into(),
        }
    }

    /// The component's resources exist, and are `running` or not.
    pub fn provisioned(running: bool, detail: impl Into<String>) -> Status {
        Status {
            provisioned: true,
            running,
            detail: detail.into(),
        }
    }
}

/// What strata stores for a component of an SDK flavor: the phase and the flavor's own
/// state, as JSON (`{"provisioned":true,"running":false,"state":{…}}`).
#[derive(Default, Serialize, Deserialize)]
struct Stored<S> {
    #[serde(default)]
    provisioned: bool,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    state: S,
}

/// Everything one lifecycle call is about: which component, its configuration (raw and
/// read into [`Flavor::Settings`]), and the flavor's state, which the call may change.
pub struct Call<'a, F: Flavor> {
    /// A stable id for the component: it survives a rename.
    pub component_id: &'a str,
    /// The component's current name.
    pub component_name: &'a str,
    /// The configuration as strata gave it: defaults filled in, paths absolute, secrets
    /// resolved for this call only.
    pub config: Config<'a>,
    /// The configuration, read by [`Flavor::settings`].
    pub settings: F::Settings,
    /// The flavor's state: what the last successful call left. Changes made by a call
    /// that succeeds are kept; a call that fails keeps nothing.
    pub state: F::State,
    phase: Phase,
}

impl<'a, F: Flavor> Call<'a, F> {
    /// Reads the state and the settings of the call `ctx`. The lifecycle calls get a
    /// `Call` ready made; this is for the calls of a second interface (`launch` of an
    /// orchestrator, the operations of an artifact store).
    ///
    /// # Errors
    /// If the stored state is unreadable, or the configuration no longer reads (a
    /// component registered by an older version of the flavor).
    pub fn new(ctx: &'a Context) -> Result<Self> {
        let stored = State::<Stored<F::State>>::decode(ctx.state.as_deref()).map_err(Error::new)?;
        let config = Config::new(&ctx.config);
        let settings = settings_of::<F>(&config).map_err(|problems| {
            let said: Vec<String> = problems.iter().map(problem_line).collect();
            Error::new(format!(
                "the configuration of `{}` does not fit this flavor: {}",
                ctx.component_name,
                said.join("; ")
            ))
            .with_hint(format!(
                "change it with `strata {} update {} --FIELD=VALUE`",
                type_name(F::info().component_type()),
                ctx.component_name
            ))
        })?;
        Ok(Call {
            component_id: &ctx.component_id,
            component_name: &ctx.component_name,
            config,
            settings,
            state: stored.state,
            phase: Phase {
                provisioned: stored.provisioned,
                running: stored.running,
            },
        })
    }

    /// How far the lifecycle got before this call.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The command line a user types to run `verb` on this component, quoted for a
    /// message: `` `strata alerter up ops` ``.
    pub fn command(&self, verb: &str) -> String {
        format!(
            "`strata {} {verb} {}`",
            type_name(F::info().component_type()),
            self.component_name
        )
    }

    /// The state to hand back, with the phase `phase`.
    fn save(self, phase: Phase) -> StateResult {
        let stored = Stored {
            provisioned: phase.provisioned,
            running: phase.running,
            state: self.state,
        };
        State::encode(&stored).map(Some)
    }
}

/// `field: message`, or the message alone.
fn problem_line(problem: &Problem) -> String {
    match &problem.field {
        Some(field) => format!("`{field}`: {}", problem.message),
        None => problem.message.clone(),
    }
}

/// [`Flavor::settings`] on `config`, with every problem it found if it found any.
fn settings_of<F: Flavor>(config: &Config<'_>) -> Result<F::Settings, Vec<Problem>> {
    let mut problems = Problems::new();
    let settings = F::settings(config, &mut problems);
    problems.into_result()?;
    settings.ok_or_else(|| {
        vec![Problem {
            field: None,
            message: "the flavor read no settings from this configuration and named no \
                      problem with it: this is a bug in the flavor (its `settings` returned \
                      `None` without recording a problem), please report it to its authors"
                .to_string(),
        }]
    })
}

impl From<Problem> for FieldError {
    fn from(problem: Problem) -> Self {
        FieldError {
            field: problem.field,
            message: problem.message,
        }
    }
}

/// The eight lifecycle functions of the WIT, written once for every [`Flavor`].
///
/// The `flavor` world's `Guest` is implemented with them for every `Flavor`; a flavor
/// of another world (artifact store, orchestrator) implements its own generated
/// lifecycle trait with them through [`impl_lifecycle!`](crate::impl_lifecycle).
pub mod lifecycle {
    use super::*;

    /// `describe`: [`Flavor::info`].
    pub fn describe<F: Flavor>() -> FlavorInfo {
        F::info().build()
    }

    /// `validate`: [`Flavor::settings`], its problems as field errors.
    ///
    /// # Errors
    /// Every problem `settings` recorded.
    pub fn validate<F: Flavor>(
        config: Vec<(String, String)>,
    ) -> std::result::Result<(), Vec<FieldError>> {
        settings_of::<F>(&Config::new(&config))
            .map(drop)
            .map_err(|problems| problems.into_iter().map(FieldError::from).collect())
    }

    /// Runs one state-changing step: read the call, run it, then record `phase` and the
    /// state it left.
    fn step<F: Flavor>(
        ctx: &Context,
        run: fn(&mut Call<'_, F>) -> Result<()>,
        phase: fn(Phase) -> Phase,
    ) -> StateResult {
        let mut call = Call::<F>::new(ctx)?;
        run(&mut call)?;
        let next = phase(call.phase);
        call.save(next)
    }

    /// `provision`: [`Flavor::provision`], then the phase is provisioned.
    ///
    /// # Errors
    /// The flavor's error, or an unreadable state or configuration.
    pub fn provision<F: Flavor>(ctx: Context) -> StateResult {
        step::<F>(&ctx, F::provision, |phase| Phase {
            provisioned: true,
            ..phase
        })
    }

    /// `deprovision`: [`Flavor::deprovision`], then the state is `State::default()` and
    /// the phase blank.
    ///
    /// # Errors
    /// The flavor's error, or an unreadable state or configuration.
    pub fn deprovision<F: Flavor>(ctx: Context) -> StateResult {
        let mut call = Call::<F>::new(&ctx)?;
        F::deprovision(&mut call)?;
        call.state = F::State::default();
        call.save(Phase::default())
    }

    /// `resume`: [`Flavor::resume`], then the phase is running.
    ///
    /// # Errors
    /// The flavor's error, or an unreadable state or configuration.
    pub fn resume<F: Flavor>(ctx: Context) -> StateResult {
        step::<F>(&ctx, F::resume, |phase| Phase {
            running: true,
            ..phase
        })
    }

    /// `suspend`: [`Flavor::suspend`], then the phase is not running.
    ///
    /// # Errors
    /// The flavor's error, or an unreadable state or configuration.
    pub fn suspend<F: Flavor>(ctx: Context) -> StateResult {
        step::<F>(&ctx, F::suspend, |phase| Phase {
            running: false,
            ..phase
        })
    }

    /// `status`: [`Flavor::status`]; if the call cannot be read, what the stored phase
    /// says (not running), with the reason as the detail.
    pub fn status<F: Flavor>(ctx: Context) -> Status {
        match Call::<F>::new(&ctx) {
            Ok(call) => F::status(&call),
            Err(err) => {
                // The phase alone, if it still reads (the `state` beside it is ignored).
                let provisioned = State::<Phase>::decode(ctx.state.as_deref())
                    .is_ok_and(|phase| phase.provisioned);
                Status {
                    provisioned,
                    running: false,
                    detail: err.to_string(),
                }
            }
        }
    }

    /// `prepare-pipeline-deployment`: [`Flavor::prepare_pipeline_deployment`].
    ///
    /// # Errors
    /// The flavor's error, or an unreadable state or configuration.
    pub fn prepare_pipeline_deployment<F: Flavor>(
        ctx: Context,
        runtime: Vec<(String, String)>,
    ) -> std::result::Result<(), String> {
        let call = Call::<F>::new(&ctx)?;
        F::prepare_pipeline_deployment(&call, &Config::new(&runtime))?;
        Ok(())
    }
}

impl<F: Flavor> Guest for F {
    fn describe() -> FlavorInfo {
        lifecycle::describe::<F>()
    }
    fn validate(config: Vec<(String, String)>) -> std::result::Result<(), Vec<FieldError>> {
        lifecycle::validate::<F>(config)
    }
    fn provision(ctx: Context) -> StateResult {
        lifecycle::provision::<F>(ctx)
    }
    fn deprovision(ctx: Context) -> StateResult {
        lifecycle::deprovision::<F>(ctx)
    }
    fn resume(ctx: Context) -> StateResult {
        lifecycle::resume::<F>(ctx)
    }
    fn suspend(ctx: Context) -> StateResult {
        lifecycle::suspend::<F>(ctx)
    }
    fn status(ctx: Context) -> Status {
        lifecycle::status::<F>(ctx)
    }
    fn prepare_pipeline_deployment(
        ctx: Context,
        runtime: Vec<(String, String)>,
    ) -> std::result::Result<(), String> {
        lifecycle::prepare_pipeline_deployment::<F>(ctx, runtime)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{ComponentType, Field, Level, ResultExt};

    /// A step operator that keeps a marker file in its `path` and counts its suspends.
    struct Marker;

    struct Settings {
        file: PathBuf,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Counts {
        #[serde(default)]
        suspends: u32,
    }

    impl Flavor for Marker {
        type Settings = Settings;
        type State = Counts;

        fn info() -> Info {
            Info::new("marker", ComponentType::StepOperator)
                .field(Field::path("path", "Where the marker goes.").required())
                .field(Field::text("note", "Written into the marker.").default("hi"))
        }

        fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
            let note = config.get("note").unwrap_or("hi");
            if note.is_empty() {
                problems.field("note", "note is empty: give a word");
            }
            if note == "forget" {
                return None; // a bug: no settings, and no problem said
            }
            let dir = problems.check("path", config.require_path("path"));
            Some(Settings {
                file: dir?.join("marker"),
            })
        }

        fn provision(call: &mut Call<'_, Self>) -> Result<()> {
            if !call.settings.file.exists() {
                std::fs::write(&call.settings.file, call.component_id)
                    .context(format!("could not create {}", call.settings.file.display()))?;
            }
            crate::info!("provisioned {}", call.component_name);
            Ok(())
        }

        fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
            match std::fs::remove_file(&call.settings.file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        }

        fn suspend(call: &mut Call<'_, Self>) -> Result<()> {
            call.state.suspends += 1;
            Ok(())
        }

        fn prepare_pipeline_deployment(_: &Call<'_, Self>, runtime: &Config<'_>) -> Result<()> {
            match runtime.get("stop") {
                Some(_) => Err(Error::new("asked to stop").with_hint("drop `stop`")),
                None => Ok(()),
            }
        }
    }

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "strata-sdk-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ctx(config: &[(&str, &str)], state: Option<Vec<u8>>) -> Context {
        Context {
            component_id: "c-1".into(),
            component_name: "op".into(),
            config: pairs(config),
            state,
        }
    }

    fn stored(bytes: &Option<Vec<u8>>) -> serde_json::Value {
        serde_json::from_slice(bytes.as_deref().expect("state handed back")).unwrap()
    }

    #[test]
    fn describe_is_the_info() {
        let info = <Marker as Guest>::describe();
        assert_eq!(info.name, "marker");
        assert_eq!(info.config.len(), 2);
    }

    #[test]
    fn validate_reports_every_problem_with_its_field() {
        let errors =
            <Marker as Guest>::validate(pairs(&[("note", ""), ("path", "rel")])).unwrap_err();
        let fields: Vec<Option<&str>> = errors.iter().map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, [Some("note"), Some("path")]);
        assert!(
            errors[1].message.contains("not an absolute path"),
            "{}",
            errors[1].message
        );
        assert!(<Marker as Guest>::validate(pairs(&[("path", "/data")])).is_ok());
    }

    #[test]
    fn settings_without_problems_or_value_is_reported_as_a_bug() {
        let errors = <Marker as Guest>::validate(pairs(&[("note", "forget"), ("path", "/data")]))
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, None);
        assert!(
            errors[0].message.contains("bug in the flavor"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_full_round_keeps_phase_and_state_and_deprovision_resets_both() {
        let dir = Scratch::new("round");
        let path = dir.0.display().to_string();
        let config = [("path", path.as_str())];
        let marker = dir.0.join("marker");
        crate::log::take();

        let state = <Marker as Guest>::provision(ctx(&config, None)).unwrap();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "c-1");
        assert_eq!(
            stored(&state),
            serde_json::json!({"provisioned": true, "running": false, "state": {"suspends": 0}})
        );
        let said = crate::log::take();
        assert_eq!(said.len(), 1);
        assert!(said[0].0 == Level::Info && said[0].1 == "provisioned op");
        // Provisioning again (after an interruption) changes nothing.
        let again = <Marker as Guest>::provision(ctx(&config, state.clone())).unwrap();
        assert_eq!(stored(&again), stored(&state));

        let status = <Marker as Guest>::status(ctx(&config, state.clone()));
        assert!(status.provisioned && !status.running);
        assert_eq!(status.detail, "provisioned, suspended");

        let state = <Marker as Guest>::resume(ctx(&config, state)).unwrap();
        let status = <Marker as Guest>::status(ctx(&config, state.clone()));
        assert!(status.provisioned && status.running, "{}", status.detail);
        assert_eq!(status.detail, "running");

        let state = <Marker as Guest>::suspend(ctx(&config, state)).unwrap();
        assert_eq!(
            stored(&state),
            serde_json::json!({"provisioned": true, "running": false, "state": {"suspends": 1}})
        );

        let state = <Marker as Guest>::deprovision(ctx(&config, state)).unwrap();
        assert!(!marker.exists());
        assert_eq!(
            stored(&state),
            serde_json::json!({"provisioned": false, "running": false, "state": {"suspends": 0}})
        );
        assert!(!<Marker as Guest>::status(ctx(&config, state)).provisioned);
        // Already gone counts as removed.
        assert!(<Marker as Guest>::deprovision(ctx(&config, None)).is_ok());
    }

    #[test]
    fn default_resume_refuses_an_unprovisioned_component_with_the_command_to_run() {
        let err = <Marker as Guest>::resume(ctx(&[("path", "/data")], None)).unwrap_err();
        assert_eq!(
            err,
            "`op` is not provisioned; run `strata step-operator up op`"
        );
    }

    #[test]
    fn errors_of_a_call_carry_their_context_and_hint() {
        let missing = std::env::temp_dir().join("strata-sdk-no-such-dir/below");
        let path = missing.display().to_string();
        let err = <Marker as Guest>::provision(ctx(&[("path", &path)], None)).unwrap_err();
        assert!(
            err.starts_with(&format!("could not create {}/marker: ", path)),
            "{err}"
        );
        assert!(err.contains("check that it exists"), "{err}");
    }

    #[test]
    fn unreadable_state_fails_the_call_and_status_says_why() {
        let garbage = Some(b"not json".to_vec());
        let err =
            <Marker as Guest>::suspend(ctx(&[("path", "/data")], garbage.clone())).unwrap_err();
        assert!(err.contains("unreadable"), "{err}");
        let status = <Marker as Guest>::status(ctx(&[("path", "/data")], garbage));
        assert!(!status.provisioned && !status.running);
        assert!(status.detail.contains("unreadable"), "{}", status.detail);
    }

    #[test]
    fn a_configuration_that_no_longer_reads_fails_the_call_with_a_way_forward() {
        let provisioned = Some(br#"{"provisioned":true,"running":true}"#.to_vec());
        let err =
            <Marker as Guest>::suspend(ctx(&[("path", "rel")], provisioned.clone())).unwrap_err();
        assert!(
            err.contains("the configuration of `op` does not fit this flavor: `path`: "),
            "{err}"
        );
        assert!(
            err.contains("`strata step-operator update op --FIELD=VALUE`"),
            "{err}"
        );
        // status still reports the recorded phase, not running.
        let status = <Marker as Guest>::status(ctx(&[("path", "rel")], provisioned));
        assert!(status.provisioned && !status.running, "{}", status.detail);
    }

    #[test]
    fn state_of_an_older_version_without_the_flavors_part_reads_as_default() {
        let old = Some(br#"{"provisioned":true}"#.to_vec());
        let state = <Marker as Guest>::suspend(ctx(&[("path", "/data")], old)).unwrap();
        assert_eq!(stored(&state)["state"]["suspends"], 1);
        assert_eq!(stored(&state)["provisioned"], true);
    }

    #[test]
    fn prepare_pipeline_deployment_sees_the_runtime_configuration() {
        let config = [("path", "/data")];
        let ok = <Marker as Guest>::prepare_pipeline_deployment(
            ctx(&config, None),
            pairs(&[("lr", "0.1")]),
        );
        assert!(ok.is_ok());
        let err = <Marker as Guest>::prepare_pipeline_deployment(
            ctx(&config, None),
            pairs(&[("stop", "1")]),
        )
        .unwrap_err();
        assert_eq!(err, "asked to stop; drop `stop`");
    }

    #[test]
    fn status_constructors() {
        let gone = Status::not_provisioned("gone");
        assert!(!gone.provisioned && !gone.running && gone.detail == "gone");
        let up = Status::provisioned(true, "up");
        assert!(up.provisioned && up.running && up.detail == "up");
        assert!(!Status::provisioned(false, "idle").running);
    }

    #[test]
    fn phase_status_names_each_phase() {
        let phase = |provisioned, running| {
            Phase {
                provisioned,
                running,
            }
            .status()
            .detail
        };
        assert_eq!(phase(false, false), "not provisioned");
        assert_eq!(phase(false, true), "not provisioned");
        assert_eq!(phase(true, false), "provisioned, suspended");
        assert_eq!(phase(true, true), "running");
        assert!(
            !Phase {
                provisioned: false,
                running: true
            }
            .status()
            .running
        );
    }
}
