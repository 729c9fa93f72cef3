//! Components: configured instances of a flavor.

use std::collections::BTreeMap;
#[allow(unused_imports)]
use strata_api::views::*;

use super::{Service, new_id};
use crate::error::{Error, Result};
use crate::model::{
    ComponentRecord, ComponentState, ComponentType, DEFAULT_NAME, FieldKind, LastError, Phase,
    check_config, effective_config, valid_object_name,
};
use crate::sandbox::Grants;
use crate::sandbox::calls::{FlavorStatus, Target};
use crate::store::{Batch, TreeId, type_key};

impl Service {
    /// Registers a component of flavor `flavor` with the user's `config`.
    pub fn component_register(
        &self,
        t: ComponentType,
        name: &str,
        flavor: &str,
        config: BTreeMap<String, String>,
        limits: crate::model::LimitOverrides,
    ) -> Result<ComponentView> {
        check_name(t.label().as_str(), name)?;
        super::flavors::check_limits(&limits)?;
        if self.store.component(t, name)?.is_some() {
            return Err(Error::exists(
                format!("{} `{name}`", t.label()),
                format!("pick another name, or see it with `strata {t} describe {name}`"),
            ));
        }
        let f = self.flavor_or_err(t, flavor)?;
        let subject = format!("{} `{name}` (flavor `{flavor}`)", t.label());
        let mut config = config;
        let connector = self.take_connector(&mut config, None)?;
        let config = self.checked_config(&f, &subject, &config)?;
        let now = crate::model::now_ms();
        let c = ComponentRecord {
            id: new_id(),
            limits,
            name: name.to_string(),
            component_type: t,
            flavor: flavor.to_string(),
            config,
            created_at: now,
            connector,
        };
        self.check_team_use(&f, &c, None)?;
        let mut batch = Batch::new();
        batch.put(TreeId::Components, &type_key(t, name), &c).put(
            TreeId::States,
            &c.id,
            &ComponentState::new(now),
        );
        self.store.apply(batch)?;
        self.component_view(&c, false)
    }

    /// Schema check, then the flavor's own `validate` in the sandbox.
    pub(super) fn checked_config(
        &self,
        f: &crate::model::FlavorRecord,
        subject: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let hint = format!(
            "see the fields with `strata {} flavor describe {}`",
            f.info.component_type, f.info.name
        );
        let config =
            check_config(&f.info, given, &self.cwd, &self.protected()).map_err(|problems| {
                Error::Config {
                    subject: subject.to_string(),
                    problems,
                    hint: hint.clone(),
                }
            })?;
        let loaded = self.load_flavor(f)?;
        let sandbox = self.sandbox()?;
        let target = Target {
            sandbox,
            loaded: &loaded,
            flavor: &f.info.name,
            grants: &Grants::default(),
            limits: &f.limits,
        };
        let effective = effective_config(&f.info, &config);
        target
            .validate(&effective)?
            .value
            .map_err(|problems| Error::Config {
                subject: subject.to_string(),
                problems,
                hint,
            })?;
        Ok(config)
    }

    pub fn component_list(&self, t: ComponentType) -> Result<Vec<ComponentView>> {
        let mut out = Vec::new();
        for c in self.store.components(Some(t))? {
            // On a team server, not those of restricted stacks the caller may not read.
            match self.require(&crate::Need::ComponentRead(t, c.name.clone())) {
                Ok(()) => out.push(self.component_view(&c, false)?),
                Err(Error::Forbidden { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A component with its recorded phase and, if `live`, the flavor's own status.
    pub fn component_describe(
        &self,
        t: ComponentType,
        name: &str,
        live: bool,
    ) -> Result<ComponentView> {
        let c = self.component_or_err(t, name)?;
        self.component_view(&c, live)
    }

    pub(super) fn component_view(&self, c: &ComponentRecord, live: bool) -> Result<ComponentView> {
        let f = self.flavor_of(c)?;
        let state = self
            .store
            .state(&c.id)?
            .unwrap_or_else(|| ComponentState::new(c.created_at));
        let stacks: Vec<String> = self
            .store
            .stacks()?
            .into_iter()
            .filter(|s| s.uses(c.component_type, &c.name))
            .map(|s| s.name)
            .collect();
        let active_name = self.active_stack_opt()?;
        let active = active_name.as_ref().is_some_and(|a| stacks.contains(a));
        let config = f
            .info
            .config
            .iter()
            .filter_map(|spec| {
                let (value, default) = match (c.config.get(&spec.name), &spec.default) {
                    (Some(v), _) => (v.clone(), false),
                    (None, Some(d)) => (d.clone(), true),
                    (None, None) => return None,
                };
                let value = if spec.kind == FieldKind::Secret
                    && crate::model::secret_reference(&value).is_none()
                {
                    "********".to_string()
                } else {
                    value
                };
                Some(ConfigValue {
                    key: spec.name.clone(),
                    value,
                    default,
                })
            })
            .collect();
        let status = if live {
            Some(match self.flavor_status(c) {
                Ok(s) => Ok(s),
                Err(e) => Err(e.to_string()),
            })
        } else {
            None
        };
        Ok(ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            component_type: c.component_type,
            flavor: c.flavor.clone(),
            flavor_sha256: f.sha256.clone(),
            config,
            grants: self.grants_for(&f, c),
            net: self.net_grant_views(&f, c),
            connector: c
                .connector
                .as_deref()
                .and_then(|id| self.connector_name(id)),
            timeout_ms: c.limits.over(f.limits).timeout_ms,
            memory_mb: c.limits.over(f.limits).memory_bytes / (1024 * 1024),
            own_limits: c.limits,
            phase: state.phase,
            interrupted: state.phase.is_interrupted(),
            last_error: state.last_error,
            active,
            stacks,
            status,
        })
    }

    /// Deletes a component no stack uses. Its resources are not touched: bring it down
    /// with `down --force` first if it provisioned any.
    pub fn component_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        let c = self.component_or_err(t, name)?;
        if name == DEFAULT_NAME {
            return Err(Error::invalid(
                format!("the default {} cannot be deleted", t.label()),
                "the default stack needs it; register your own and use that instead",
            ));
        }
        let users: Vec<String> = self
            .store
            .stacks()?
            .into_iter()
            .filter(|s| s.uses(t, name))
            .map(|s| s.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::invalid(
                format!(
                    "{} `{name}` is used by stack{} {}",
                    t.label(),
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", ")
                ),
                "remove it from those stacks (`strata stack update`) or delete them first",
            ));
        }
        // The phase is checked and the record removed while no lifecycle call runs, so
        // an `up` under way cannot provision a component deleted beneath it.
        self.while_idle(&c, || {
            let state = self.store.state(&c.id)?;
            if let Some(s) = &state
                && s.phase != Phase::Registered
            {
                return Err(Error::invalid(
                    format!(
                        "{} `{name}` is {}: deleting it would leave its resources behind",
                        t.label(),
                        s.phase
                    ),
                    format!("run `strata {t} down {name} --force` first"),
                ));
            }
            let mut batch = Batch::new();
            batch
                .remove(TreeId::Components, &type_key(t, name))
                .remove(TreeId::States, &c.id);
            self.store.apply(batch)
        })
    }

    /// The flavor's own view of the component (read-only).
    pub fn flavor_status(&self, c: &ComponentRecord) -> Result<FlavorStatus> {
        let b = self.bind(c, false)?;
        let called = b.target(self.sandbox()?).status(&b.ctx)?;
        self.note_logs(
            &format!("{} `{}` status", c.component_type, c.name),
            &called.logs,
            called.dropped_logs,
        );
        Ok(called.value)
    }

    /// Records a failure without changing the phase.
    pub(super) fn record_error(
        &self,
        c: &ComponentRecord,
        call: &str,
        message: String,
    ) -> Result<()> {
        let mut state = self
            .store
            .state(&c.id)?
            .unwrap_or_else(|| ComponentState::new(c.created_at));
        state.last_error = Some(LastError {
            call: call.to_string(),
            message,
            at: crate::model::now_ms(),
        });
        let mut batch = Batch::new();
        batch.put(TreeId::States, &c.id, &state);
        self.store.apply(batch)
    }
}

pub(super) fn check_name(what: &str, name: &str) -> Result<()> {
    crate::model::text::check_name_chars(&format!("{what} name"), name)?;
    if !valid_object_name(name) {
        return Err(Error::invalid(
            format!("`{name}` is not a valid {what} name"),
            "use letters, digits, `-`, `_` and `.` (not first), at most 128 characters",
        ));
    }
    Ok(())
}
