//! Bringing components up and down.
//!
//! `up` asks the flavor what exists (`status`), then provisions what is missing and
//! resumes what is not running; `down` suspends, and with `force` deprovisions. Each step
//! writes its intent phase (`provisioning`) to disk before calling the flavor and its
//! outcome after: a crash in between leaves a visible phase that the next `up` or `down`
//! repeats, never a silent lie. On failure the component returns to the stable phase it
//! had and the error is recorded with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use crate::error::{Error, Result};
use crate::model::{
    ComponentRecord, ComponentState, ComponentType, FieldKind, FlavorRecord, LastError, Phase,
    effective_config, now_ms, scheme_of,
};
use crate::sandbox::calls::{Context, Step, Target};
use crate::sandbox::dirs::OpenError;
use crate::sandbox::{GrantedDir, Grants, Loaded, Sandbox};
use crate::store::{Batch, TreeId, type_key};

/// Which way a lifecycle run goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Up,
    Down { force: bool },
}

impl Service {
    /// The configuration a flavor sees for `c`: defaults filled in, and the secret
    /// references the user typed for `c` resolved for this call only. A flavor's default
    /// is passed as it is, never resolved (a default that names a secret is refused at
    /// `flavor register`; this keeps a flavor registered before that rule from reading a
    /// secret the user never gave it). Also returns the values resolved, which strata
    /// masks in everything the call hands back.
    pub(super) fn context(
        &self,
        f: &FlavorRecord,
        c: &ComponentRecord,
    ) -> Result<(Context, Vec<String>)> {
        let state = self.store.state(&c.id)?.and_then(|s| s.state);
        let mut config = effective_config(&f.info, &c.config);
        let connector = match &c.connector {
            Some(id) => Some(self.connector_by_id(id)?),
            None => None,
        };
        let mut secrets = Vec::new();
        for (key, value) in &mut config {
            if !c.config.contains_key(key.as_str()) {
                continue;
            }
            if let Some((secret, skey)) = crate::model::secret_reference(value) {
                let (secret, skey) = (secret.to_string(), skey.to_string());
                *value = self.secret_value(&secret, &skey).map_err(|e| match e {
                    Error::NotFound { what, hint } => Error::NotFound {
                        what: format!(
                            "{what} (referenced by field `{key}` of {} `{}`)",
                            c.component_type.label(),
                            c.name
                        ),
                        hint,
                    },
                    other => other,
                })?;
                secrets.push(value.clone());
                // A URL kept in a secret (a webhook whose path is its credential): strata's
                // own log of a request names it as origin (port always shown) and path,
                // the path cut at 256 bytes; mask those forms too.
                secrets.extend(url_path_forms(value));
            }
        }
        if let Some(r) = &connector {
            config.extend(Self::connector_context(r));
        }
        Ok((
            Context {
                component_id: c.id.clone(),
                component_name: c.name.clone(),
                config,
                state,
            },
            secrets,
        ))
    }

    /// The directories `c` is granted, for display: a directory that does not exist yet
    /// is granted once `provision` creates it, and says so.
    pub(super) fn grants_for(&self, f: &FlavorRecord, c: &ComponentRecord) -> Vec<GrantView> {
        local_paths(f, c)
            .filter(|(_, v)| v.starts_with('/'))
            .map(|(_, d)| GrantView {
                exists: std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()),
                path: d.clone(),
                access: "read-write".into(),
            })
            .collect()
    }

    /// The directories `c` may be granted: the values the user gave its `path` fields
    /// (never a flavor's default), each checked again against strata's rules (absolute,
    /// not `/`, not holding or inside strata's home), however it was given and whatever
    /// was stored before these rules.
    pub(super) fn grant_paths(
        &self,
        f: &FlavorRecord,
        c: &ComponentRecord,
    ) -> Result<Vec<(String, PathBuf)>> {
        let protected = self.protected();
        let subject = format!("{} `{}`", c.component_type.label(), c.name);
        let mut out = Vec::new();
        for (field, value) in local_paths(f, c) {
            let refuse = |why: String| Error::Invalid {
                what: format!("{subject}: field `{field}` cannot be granted: {why}"),
                hint: format!(
                    "give it a plain absolute directory: `strata {} update {} --{field}=/some/dir`",
                    c.component_type, c.name
                ),
            };
            if crate::model::secret_reference(value).is_some() {
                return Err(refuse(
                    "it holds a secret reference, and a directory grant must be a path `describe` can show".into(),
                ));
            }
            let path = PathBuf::from(value);
            crate::model::check_grantable(&path, &protected).map_err(refuse)?;
            out.push((field.clone(), path));
        }
        Ok(out)
    }

    /// Everything one call into `c`'s flavor needs: the flavor loaded, the context with
    /// secrets resolved, and its grants, each directory opened without following a
    /// symlink anywhere in its path. With `create_dirs` (before `provision`) missing
    /// granted directories are created first, the same way.
    pub(super) fn bind(&self, c: &ComponentRecord, create_dirs: bool) -> Result<Bound> {
        let f = self.flavor_of(c)?;
        let (ctx, secrets) = self.context(&f, c)?;
        let mut dirs = Vec::new();
        for (field, path) in self.grant_paths(&f, c)? {
            match GrantedDir::open(&path, create_dirs) {
                Ok(Some(dir)) => dirs.push(dir),
                // Granted once `provision` creates it.
                Ok(None) => {}
                Err(e) => {
                    let symlink = matches!(e, OpenError::Symlink { .. });
                    return Err(Error::Invalid {
                        what: format!(
                            "{} `{}`: the directory of field `{field}` ({}) cannot be granted: {e}",
                            c.component_type.label(),
                            c.name,
                            path.display()
                        ),
                        hint: if symlink {
                            format!(
                                "a symlink where a granted directory should be may be a flavor trying to reach outside its grant: look at it, remove it, and run the command again; if you made the link yourself, give the real directory (`strata {} update {} --{field}=\"$(realpath {})\"`)",
                                c.component_type,
                                c.name,
                                path.display()
                            )
                        } else {
                            "pick a directory strata can create and open, or create it yourself"
                                .into()
                        },
                    });
                }
            }
        }
        let loaded = self.load_flavor(&f)?;
        let origins = self.net_grants(&f, c, true)?;
        let mut secrets = secrets;
        for g in &origins {
            if let Some(cred) = &g.credential {
                secrets.extend(cred.secrets());
            }
        }
        Ok(Bound {
            limits: c.limits.over(f.limits),
            f,
            loaded,
            ctx,
            grants: Grants {
                dirs,
                secrets,
                net: crate::sandbox::net::NetGrants { origins },
            },
        })
    }

    pub fn component_up(
        &self,
        t: ComponentType,
        name: &str,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let c = self.component_or_err(t, name)?;
        self.converge(&c, Direction::Up, on)
    }

    pub fn component_down(
        &self,
        t: ComponentType,
        name: &str,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let c = self.component_or_err(t, name)?;
        self.converge(&c, Direction::Down { force }, on)
    }

    /// Brings one component to where `dir` wants it, from what its flavor says exists.
    pub(super) fn converge(
        &self,
        c: &ComponentRecord,
        dir: Direction,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let lock = self.component_lock(&c.id);
        let _serialised = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _across_nodes = self.lifecycle_db_lock(c)?;
        let _fresh = self.store.fresh_reads()?;
        // What was read before the lock may have changed while waiting for it: the
        // component deleted, renamed or given a new configuration.
        let fresh = self
            .store
            .get::<ComponentRecord>(TreeId::Components, &type_key(c.component_type, &c.name))?
            .filter(|now| now.id == c.id)
            .ok_or_else(|| {
                Error::not_found(
                    format!("{} `{}`", c.component_type.label(), c.name),
                    "it was deleted or renamed while waiting for a lifecycle call under way; see `strata <type> list`",
                )
            })?;
        let c = &fresh;
        // Checked here, on the record the call uses, under its lock: a stack changed (or
        // an active stack switched) between the route's check and this call changes
        // nothing about who may do it.
        self.require(&crate::Need::Component(c.component_type, c.name.clone()))?;
        self.refuse_if_stopping(c)?;
        let emit = |on: &mut dyn FnMut(Progress), step: &str, outcome: StepOutcome| {
            on(Progress {
                component_type: c.component_type,
                name: c.name.clone(),
                step: step.to_string(),
                outcome,
            })
        };
        let live = match self.flavor_status(c) {
            Ok(s) => s,
            Err(e) => {
                let message = e.to_string();
                self.record_error(c, "status", message.clone())?;
                emit(on, "status", StepOutcome::Failed { message });
                return Err(e);
            }
        };
        let mut steps = Vec::new();
        match dir {
            Direction::Up => {
                if !live.provisioned {
                    steps.push(Step::Provision);
                }
                if !live.running {
                    steps.push(Step::Resume);
                }
            }
            Direction::Down { force } => {
                if live.running {
                    steps.push(Step::Suspend);
                }
                if force && live.provisioned {
                    steps.push(Step::Deprovision);
                }
            }
        }
        if steps.is_empty() {
            let phase = match (live.provisioned, live.running) {
                (_, true) => Phase::Running,
                (true, false) => Phase::Provisioned,
                (false, false) => Phase::Registered,
            };
            self.set_phase(c, phase)?;
            let detail = match dir {
                Direction::Up => "already running".to_string(),
                Direction::Down { force: false } if live.provisioned => {
                    "not running (still provisioned: `--force` deprovisions)".to_string()
                }
                Direction::Down { .. } => "nothing provisioned".to_string(),
            };
            emit(on, "check", StepOutcome::Unchanged { detail });
            return Ok(());
        }
        for step in steps {
            emit(on, step.as_str(), StepOutcome::Started);
            let started = Instant::now();
            match self.run_step(c, step) {
                Ok(()) => emit(
                    on,
                    step.as_str(),
                    StepOutcome::Done {
                        ms: started.elapsed().as_millis() as u64,
                    },
                ),
                Err(e) => {
                    emit(
                        on,
                        step.as_str(),
                        StepOutcome::Failed {
                            message: e.to_string(),
                        },
                    );
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn set_phase(&self, c: &ComponentRecord, phase: Phase) -> Result<()> {
        let mut state = self
            .store
            .state(&c.id)?
            .unwrap_or_else(|| ComponentState::new(c.created_at));
        if state.phase == phase {
            return Ok(());
        }
        state.phase = phase;
        state.updated_at = now_ms();
        let mut batch = Batch::new();
        batch.put(TreeId::States, &c.id, &state);
        self.store.apply(batch)
    }

    /// One lifecycle call: intent on disk, the call, the outcome on disk.
    fn run_step(&self, c: &ComponentRecord, step: Step) -> Result<()> {
        let (intent, success, stable) = match step {
            Step::Provision => (Phase::Provisioning, Phase::Provisioned, Phase::Registered),
            Step::Resume => (Phase::Resuming, Phase::Running, Phase::Provisioned),
            Step::Suspend => (Phase::Suspending, Phase::Provisioned, Phase::Running),
            Step::Deprovision => (Phase::Deprovisioning, Phase::Registered, Phase::Provisioned),
        };
        let b = self.bind(c, step == Step::Provision)?;
        let f = &b.f;
        self.set_phase(c, intent)?;
        let target = b.target(self.sandbox()?);
        let outcome = {
            let _in_flight = InFlightGuard::new(self, c, step.as_str());
            target.step(step, &b.ctx)
        };
        if let Ok(called) = &outcome {
            self.note_logs(
                &format!("{} `{}` {}", c.component_type, c.name, step.as_str()),
                &called.logs,
                called.dropped_logs,
            );
        }
        let mut state = self
            .store
            .state(&c.id)?
            .unwrap_or_else(|| ComponentState::new(c.created_at));
        state.updated_at = now_ms();
        let result = match outcome {
            Ok(called) => match called.value {
                Ok(new_state) => {
                    state.phase = success;
                    if new_state.is_some() {
                        state.state = new_state;
                    }
                    state.last_error = None;
                    Ok(())
                }
                Err(message) => {
                    state.phase = stable;
                    state.last_error = Some(LastError {
                        call: step.as_str().into(),
                        message: message.clone(),
                        at: now_ms(),
                    });
                    Err(Error::Flavor {
                        subject: format!(
                            "{} `{}` (flavor `{}`)",
                            c.component_type.label(),
                            c.name,
                            f.info.name
                        ),
                        call: step.as_str().into(),
                        message,
                    })
                }
            },
            Err(e) => {
                state.phase = stable;
                state.last_error = Some(LastError {
                    call: step.as_str().into(),
                    message: e.to_string(),
                    at: now_ms(),
                });
                Err(e)
            }
        };
        let mut batch = Batch::new();
        batch.put(TreeId::States, &c.id, &state);
        self.store.apply(batch)?;
        result
    }
}

impl Service {
    /// A component's calls do not start once the daemon is stopping.
    fn refuse_if_stopping(&self, c: &ComponentRecord) -> Result<()> {
        if self.is_stopping() {
            return Err(Error::Busy {
                what: format!(
                    "the daemon is stopping: {} `{}` was not called",
                    c.component_type.label(),
                    c.name
                ),
                hint: "start the daemon again (`strata daemon start`) and repeat the command"
                    .into(),
            });
        }
        Ok(())
    }

    /// Runs `f` on the component `t`/`name` as a call named `call` beyond the lifecycle
    /// (an artifact store's files, an alerter's post): one at a time with the
    /// component's other calls (its lifecycle lock held), listed among the calls under
    /// way, and refused once the daemon is stopping, as a lifecycle call is.
    pub(super) fn as_call<T>(
        &self,
        t: ComponentType,
        name: &str,
        call: &str,
        f: impl FnOnce(&ComponentRecord) -> Result<T>,
    ) -> Result<T> {
        let c = self.component_or_err(t, name)?;
        let lock = self.component_lock(&c.id);
        let _serialised = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _across_nodes = self.lifecycle_db_lock(&c)?;
        // Reads from now on see what changed while waiting (a team server's memo is of
        // the moment the request began).
        let _fresh = self.store.fresh_reads()?;
        // Read again: it may have been deleted, renamed or changed while waiting.
        let c = self.component_or_err(t, name)?;
        let need = if matches!(call, "read" | "list" | "stat") {
            crate::Need::ComponentRead(c.component_type, c.name.clone())
        } else {
            crate::Need::Component(c.component_type, c.name.clone())
        };
        self.require(&need)?;
        self.refuse_if_stopping(&c)?;
        let _in_flight = InFlightGuard::new(self, &c, call);
        f(&c)
    }
}

/// How long a lifecycle call waits for the same component's call on another server node.
const LIFECYCLE_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Service {
    /// On a team server, the database's lock of `c`: a call on another node finishes
    /// before this one starts, and this one then sees what that one did (so two users
    /// bringing one stack up at once on two nodes provision each component once).
    fn lifecycle_db_lock(&self, c: &ComponentRecord) -> Result<crate::store::StoreLock> {
        self.component_db_lock(&c.id, LIFECYCLE_WAIT)?
            .ok_or_else(|| Error::Busy {
                what: format!(
                    "{} `{}` has had a lifecycle call under way on another server node for over {} minutes",
                    c.component_type.label(),
                    c.name,
                    LIFECYCLE_WAIT.as_secs() / 60
                ),
                hint: "wait for it to finish, then run the command again".into(),
            })
    }
}

/// Lists a lifecycle call in [`Service::in_flight`] while it runs.
struct InFlightGuard<'a> {
    svc: &'a Service,
    id: String,
}

impl<'a> InFlightGuard<'a> {
    fn new(svc: &'a Service, c: &ComponentRecord, call: &str) -> Self {
        svc.shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                c.id.clone(),
                super::InFlight {
                    component_id: c.id.clone(),
                    component_type: c.component_type,
                    name: c.name.clone(),
                    call: call.to_string(),
                },
            );
        InFlightGuard {
            svc,
            id: c.id.clone(),
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.svc
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Service {
    /// Records every lifecycle call still under way as interrupted, for a process that is
    /// about to exit without waiting for them: the intent phase stays on disk (so `up` and
    /// `down` repeat the call) and the last error says what happened. Returns them.
    pub fn record_interrupted(&self, why: &str) -> Result<Vec<super::InFlight>> {
        let running = self.in_flight();
        let mut batch = Batch::new();
        for r in &running {
            if let Some(mut state) = self.store.state(&r.component_id)? {
                state.last_error = Some(LastError {
                    call: r.call.clone(),
                    message: format!("interrupted: {why} before `{}` finished", r.call),
                    at: now_ms(),
                });
                state.updated_at = now_ms();
                batch.put(TreeId::States, &r.component_id, &state);
            }
        }
        self.store.apply(batch)?;
        Ok(running)
    }
}

/// What a call needs to reach into `c`'s flavor; see [`Service::bind`].
pub(super) struct Bound {
    pub f: FlavorRecord,
    pub loaded: Arc<Loaded>,
    pub ctx: Context,
    pub grants: Grants,
    /// The component's limits, else its flavor's.
    pub limits: crate::sandbox::Limits,
}

impl Bound {
    pub(super) fn target<'a>(&'a self, sandbox: &'a Sandbox) -> Target<'a> {
        Target {
            sandbox,
            loaded: &self.loaded,
            flavor: &self.f.info.name,
            grants: &self.grants,
            limits: &self.limits,
        }
    }
}

/// The values the user gave `c`'s `path` fields that name local directories (not
/// `scheme://` locations), as stored: what may become grants, and nothing else.
pub(super) fn local_paths<'a>(
    f: &'a FlavorRecord,
    c: &'a ComponentRecord,
) -> impl Iterator<Item = (&'a String, &'a String)> {
    c.config.iter().filter(|(k, v)| {
        f.info.field(k).is_some_and(|s| s.kind == FieldKind::Path) && scheme_of(v).is_empty()
    })
}

/// The path of `value` if it is an `http(s)://` URL with one, and its first 256 bytes:
/// how the network gate's log shows it, which must be masked like the whole value.
fn url_path_forms(value: &str) -> Vec<String> {
    let Some((scheme, rest)) = value.trim().split_once("://") else {
        return Vec::new();
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Vec::new();
    }
    let Some(at) = rest.find('/') else {
        return Vec::new();
    };
    let path = rest[at..].split(['?', '#']).next().unwrap_or("");
    if path.len() <= 1 {
        return Vec::new();
    }
    let mut forms = vec![path.to_string()];
    if path.len() > 256 {
        let mut cut = 256;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        forms.push(path[..cut].to_string());
    }
    forms
}

#[cfg(test)]
mod url_tests {
    use super::url_path_forms;

    #[test]
    fn a_secret_url_is_masked_in_the_forms_the_gate_logs() {
        assert_eq!(
            url_path_forms("https://hooks.slack.com/services/T0/B1/x?y=1"),
            vec!["/services/T0/B1/x".to_string()]
        );
        assert!(url_path_forms("https://hooks.slack.com/").is_empty());
        assert!(url_path_forms("not a url").is_empty());
        let long = format!("https://h.example/{}", "a".repeat(300));
        let forms = url_path_forms(&long);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[1].len(), 256);
    }
}
