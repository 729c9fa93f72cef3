//! Changing what exists: update, remove an attribute, rename and copy components and
//! stacks. Every change goes through the same checks as registration, and lands in one
//! batch (a rename also rewrites every stack that names the component).

use std::collections::BTreeMap;
#[allow(unused_imports)]
use strata_api::views::*;

use super::components::check_name;
use super::{ComponentView, Service, StackView, new_id};
use crate::error::{Error, Result};
use crate::model::{
    ComponentRecord, ComponentState, ComponentType, DEFAULT_NAME, FieldKind, FlavorRecord, Phase,
    StackRecord, effective_config, now_ms,
};
use crate::store::{Batch, TreeId, type_key};

impl Service {
    /// Merges `changes` into a component's configuration and validates the result as a
    /// whole. A provisioned component keeps its resources; the new values apply from its
    /// next lifecycle call (a warning says so).
    pub fn component_update(
        &self,
        t: ComponentType,
        name: &str,
        changes: BTreeMap<String, String>,
        limits: crate::model::LimitOverrides,
    ) -> Result<ComponentView> {
        super::flavors::check_limits(&limits)?;
        if changes.is_empty() && limits.is_empty() {
            return Err(Error::invalid(
                "nothing to update",
                format!("give the new values as --KEY=VALUE; see `strata {t} describe {name}`"),
            ));
        }
        let mut c = self.component_or_err(t, name)?;
        let before = c.clone();
        let f = self.flavor_of(&c)?;
        c.limits.timeout_ms = limits.timeout_ms.or(c.limits.timeout_ms);
        c.limits.memory_mb = limits.memory_mb.or(c.limits.memory_mb);
        let mut changes = changes;
        c.connector = self.take_connector(&mut changes, c.connector.clone())?;
        let mut merged = c.config.clone();
        merged.extend(changes);
        c.config = self.checked_config(
            &f,
            &format!("{} `{name}` (flavor `{}`)", t.label(), f.info.name),
            &merged,
        )?;
        self.check_team_use(&f, &c, Some(&before))?;
        self.save_changed(&f, &before, &c)
    }

    /// Removes one configuration value; the field's default (if any) applies again.
    pub fn component_remove_attribute(
        &self,
        t: ComponentType,
        name: &str,
        key: &str,
    ) -> Result<ComponentView> {
        let mut c = self.component_or_err(t, name)?;
        let before = c.clone();
        let f = self.flavor_of(&c)?;
        let key = key.replace('-', "_");
        crate::model::text::check_name_chars("config key", &key)?;
        let Some(spec) = f.info.field(&key) else {
            return Err(Error::invalid(
                format!("flavor `{}` has no field `{key}`", f.info.name),
                format!(
                    "see the fields with `strata {t} flavor describe {}`",
                    f.info.name
                ),
            ));
        };
        if spec.required && spec.default.is_none() {
            return Err(Error::invalid(
                format!(
                    "`{key}` is a required field of flavor `{}` and has no default",
                    f.info.name
                ),
                format!("change it instead: `strata {t} update {name} --{key}=VALUE`"),
            ));
        }
        if c.config.remove(&key).is_none() {
            return Err(Error::invalid(
                format!("{} `{name}` has no value for `{key}`", t.label()),
                "nothing to remove",
            ));
        }
        c.config = self.checked_config(
            &f,
            &format!("{} `{name}` (flavor `{}`)", t.label(), f.info.name),
            &c.config,
        )?;
        self.save_changed(&f, &before, &c)
    }

    /// Stores the changed `after` of `before`, once no lifecycle call holds it and the
    /// change is one a component in its phase may take.
    fn save_changed(
        &self,
        f: &FlavorRecord,
        before: &ComponentRecord,
        after: &ComponentRecord,
    ) -> Result<ComponentView> {
        self.while_idle(before, || {
            self.check_change_while_provisioned(f, before, after)?;
            let mut batch = Batch::new();
            batch.put(
                TreeId::Components,
                &type_key(after.component_type, &after.name),
                after,
            );
            self.store.apply(batch)
        })?;
        self.component_view(after, false)
    }

    /// A provisioned component keeps its resources across a change, so a change of where
    /// they are (a `path` field, which is also its grant) is refused: the old ones would
    /// be left behind, out of reach of `down --force`. Any other change gets a warning.
    fn check_change_while_provisioned(
        &self,
        f: &FlavorRecord,
        before: &ComponentRecord,
        after: &ComponentRecord,
    ) -> Result<()> {
        let Some(s) = self.store.state(&before.id)? else {
            return Ok(());
        };
        if s.phase == Phase::Registered {
            return Ok(());
        }
        let (t, name) = (before.component_type, &before.name);
        let old = effective_config(&f.info, &before.config);
        let new = effective_config(&f.info, &after.config);
        for spec in f.info.config.iter().filter(|s| s.kind == FieldKind::Path) {
            let value = |cfg: &[(String, String)]| {
                cfg.iter()
                    .find(|(k, _)| *k == spec.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            if value(&old) != value(&new) {
                return Err(Error::invalid(
                    format!(
                        "{} `{name}` is {}: changing `{}` would leave what it created in {} behind",
                        t.label(),
                        s.phase,
                        spec.name,
                        value(&old)
                    ),
                    format!(
                        "take it down first (`strata {t} down {name} --force`), then update it and bring it up again"
                    ),
                ));
            }
        }
        self.warn(format!(
            "{} `{name}` is {}: its resources stay where they are; the new configuration applies from its next lifecycle call",
            t.label(),
            s.phase
        ));
        Ok(())
    }

    /// Renames a component and every stack's reference to it, atomically. Its id (and so
    /// its lifecycle state) stays.
    pub fn component_rename(
        &self,
        t: ComponentType,
        old: &str,
        new: &str,
    ) -> Result<ComponentView> {
        let mut c = self.component_or_err(t, old)?;
        if old == DEFAULT_NAME {
            return Err(Error::invalid(
                format!("the default {} cannot be renamed", t.label()),
                "copy it instead: `strata … copy default NEW`",
            ));
        }
        self.check_free_component(t, new)?;
        c.name = new.to_string();
        let mut batch = Batch::new();
        batch.remove(TreeId::Components, &type_key(t, old)).put(
            TreeId::Components,
            &type_key(t, new),
            &c,
        );
        for mut s in self.store.stacks()? {
            if let Some(names) = s.components.get_mut(&t)
                && names.iter().any(|n| n == old)
            {
                names
                    .iter_mut()
                    .filter(|n| *n == old)
                    .for_each(|n| *n = new.to_string());
                batch.put(TreeId::Stacks, &s.name.clone(), &s);
            }
        }
        self.store.apply(batch)?;
        self.component_view(&c, false)
    }

    /// Registers a new component with the configuration of `src` (not its state).
    pub fn component_copy(&self, t: ComponentType, src: &str, dst: &str) -> Result<ComponentView> {
        let mut c = self.component_or_err(t, src)?;
        self.require(&crate::Need::ComponentRead(t, src.to_string()))?;
        self.check_free_component(t, dst)?;
        let now = now_ms();
        c.id = new_id();
        c.name = dst.to_string();
        c.created_at = now;
        // A copy holds what the original holds (secrets, a connector, directories): the
        // copier must be allowed each, as if they had registered it.
        self.check_team_use(&self.flavor_of(&c)?, &c, None)?;
        let mut batch = Batch::new();
        batch.put(TreeId::Components, &type_key(t, dst), &c).put(
            TreeId::States,
            &c.id,
            &ComponentState::new(now),
        );
        self.store.apply(batch)?;
        self.component_view(&c, false)
    }

    fn check_free_component(&self, t: ComponentType, name: &str) -> Result<()> {
        check_name(&t.label(), name)?;
        if self.store.component(t, name)?.is_some() {
            return Err(Error::exists(
                format!("{} `{name}`", t.label()),
                "pick another name",
            ));
        }
        Ok(())
    }

    /// Replaces the components of the types given (others stay) and checks the result.
    pub fn stack_update(
        &self,
        name: &str,
        components: BTreeMap<ComponentType, Vec<String>>,
    ) -> Result<StackView> {
        if components.is_empty() {
            return Err(Error::invalid(
                "nothing to update",
                "name the components to put in, e.g. `-a OTHER_STORE`",
            ));
        }
        self.stack_edit(name, components, BTreeMap::new())
    }

    /// Removes the named components from a stack (the components themselves stay); an
    /// empty list of a type removes every component of that type.
    pub fn stack_remove_component(
        &self,
        name: &str,
        components: BTreeMap<ComponentType, Vec<String>>,
    ) -> Result<StackView> {
        if components.is_empty() {
            return Err(Error::invalid(
                "nothing to remove",
                "name the components to take out, e.g. `--step-operator NAME`",
            ));
        }
        self.stack_edit(name, BTreeMap::new(), components)
    }

    /// One change of a stack's components: `set` replaces the components of its types,
    /// then `remove` takes components out (an empty list: every one of that type). The
    /// stack is checked once, after both, and stored only if it passes.
    pub fn stack_edit(
        &self,
        name: &str,
        set: BTreeMap<ComponentType, Vec<String>>,
        remove: BTreeMap<ComponentType, Vec<String>>,
    ) -> Result<StackView> {
        let mut s = self.editable_stack(name)?;
        for (t, names) in set {
            s.components.insert(t, names);
        }
        for (t, names) in remove {
            let current = s.components.entry(t).or_default();
            if names.is_empty() && current.is_empty() {
                return Err(Error::invalid(
                    format!("stack `{name}` has no {}", t.label()),
                    format!("see its components with `strata stack describe {name}`"),
                ));
            }
            let names = if names.is_empty() {
                current.clone()
            } else {
                names
            };
            for n in names {
                let Some(i) = current.iter().position(|c| *c == n) else {
                    return Err(Error::invalid(
                        format!("stack `{name}` has no {} `{n}`", t.label()),
                        format!("see its components with `strata stack describe {name}`"),
                    ));
                };
                current.remove(i);
            }
            if current.is_empty() {
                s.components.remove(&t);
            }
        }
        self.save_checked_stack(&s)
    }

    /// A stack the user may change: any but `default`, which stays as `init` made it.
    fn editable_stack(&self, name: &str) -> Result<StackRecord> {
        let s = self.stack_or_err(name)?;
        if name == DEFAULT_NAME {
            return Err(Error::invalid(
                "the default stack cannot be changed",
                "copy it and change the copy: `strata stack copy default mine`",
            ));
        }
        Ok(s)
    }

    fn save_checked_stack(&self, s: &StackRecord) -> Result<StackView> {
        self.check_stack(s)?;
        if self.active_stack_opt()?.as_deref() == Some(s.name.as_str()) {
            self.check_stack_secrets(s)?;
        }
        let mut batch = Batch::new();
        batch.put(TreeId::Stacks, &s.name, s);
        self.store.apply(batch)?;
        self.stack_view(s)
    }

    pub fn stack_rename(&self, old: &str, new: &str) -> Result<StackView> {
        let mut s = self.stack_or_err(old)?;
        if old == DEFAULT_NAME {
            return Err(Error::invalid(
                "the default stack cannot be renamed",
                "copy it instead: `strata stack copy default NEW`",
            ));
        }
        self.check_free_stack(new)?;
        s.name = new.to_string();
        let mut batch = Batch::new();
        batch
            .remove(TreeId::Stacks, old)
            .put(TreeId::Stacks, new, &s);
        self.move_grants(&mut batch, "stack", old, Some(new))?;
        if self.active_stack_opt()?.as_deref() == Some(old) {
            batch.put(TreeId::Meta, &self.active_key(), &new.to_string());
        }
        self.store.apply(batch)?;
        self.stack_view(&s)
    }

    pub fn stack_copy(&self, src: &str, dst: &str) -> Result<StackView> {
        let mut s = self.stack_or_err(src)?;
        self.check_free_stack(dst)?;
        s.id = new_id();
        s.name = dst.to_string();
        s.created_at = now_ms();
        let mut batch = Batch::new();
        batch.put(TreeId::Stacks, dst, &s);
        self.store.apply(batch)?;
        self.stack_view(&s)
    }

    fn check_free_stack(&self, name: &str) -> Result<()> {
        check_name("stack", name)?;
        if self.store.stack(name)?.is_some() {
            return Err(Error::exists(
                format!("stack `{name}`"),
                "pick another name",
            ));
        }
        Ok(())
    }

    /// Deletes a stack; with `recursive`, also the components no other stack uses (never
    /// the defaults). Refused as a whole if one of those is still provisioned.
    pub fn stack_delete_recursive(&self, name: &str) -> Result<Vec<String>> {
        let s = self.stack_or_err(name)?;
        self.check_deletable_stack(name)?;
        let others: Vec<StackRecord> = self
            .store
            .stacks()?
            .into_iter()
            .filter(|o| o.name != name)
            .collect();
        let mut batch = Batch::new();
        batch.remove(TreeId::Stacks, name);
        self.move_grants(&mut batch, "stack", name, None)?;
        let mut deleted = Vec::new();
        for (t, n) in s.ordered() {
            if n == DEFAULT_NAME || others.iter().any(|o| o.uses(t, &n)) {
                continue;
            }
            let c = self.component_or_err(t, &n)?;
            if let Some(st) = self.store.state(&c.id)?
                && st.phase != Phase::Registered
            {
                return Err(Error::invalid(
                    format!(
                        "{} `{n}` of stack `{name}` is {}: deleting it would leave its resources behind",
                        t.label(),
                        st.phase
                    ),
                    format!("run `strata stack down {name} --force` first"),
                ));
            }
            batch
                .remove(TreeId::Components, &type_key(t, &n))
                .remove(TreeId::States, &c.id);
            deleted.push(format!("{t} `{n}`"));
        }
        self.store.apply(batch)?;
        Ok(deleted)
    }

    pub(super) fn check_deletable_stack(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NAME {
            return Err(Error::invalid(
                "the default stack cannot be deleted",
                "register your own stacks beside it",
            ));
        }
        if self.active_stack_opt()?.as_deref() == Some(name) {
            return Err(Error::invalid(
                format!("stack `{name}` is the active stack"),
                "activate another one first: `strata stack set default`",
            ));
        }
        Ok(())
    }
}
