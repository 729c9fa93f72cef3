//! Stacks: named sets of components, one of them active.

use std::collections::BTreeMap;
#[allow(unused_imports)]
use strata_api::views::*;

use super::components::check_name;
use super::lifecycle::Direction;
use super::{Progress, Service, new_id};
use crate::error::{Error, Result};
use crate::model::{ComponentRecord, ComponentType, RequirementKind, StackRecord, now_ms};
use crate::store::{Batch, TreeId};

impl Service {
    /// Registers a stack from components named by type.
    pub fn stack_register(
        &self,
        name: &str,
        components: BTreeMap<ComponentType, Vec<String>>,
        set_active: bool,
    ) -> Result<StackView> {
        check_name("stack", name)?;
        if self.store.stack(name)?.is_some() {
            return Err(Error::exists(
                format!("stack `{name}`"),
                format!("pick another name, or see it with `strata stack describe {name}`"),
            ));
        }
        let components: BTreeMap<_, _> = components
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let stack = StackRecord {
            id: new_id(),
            name: name.to_string(),
            components,
            created_at: now_ms(),
        };
        self.check_stack(&stack)?;
        let mut batch = Batch::new();
        batch.put(TreeId::Stacks, name, &stack);
        if set_active {
            batch.put(TreeId::Meta, &self.active_key(), &name.to_string());
        }
        self.store.apply(batch)?;
        self.stack_view(&stack)
    }

    /// Every rule a stack must keep: required types, one component per type (but step
    /// operators), components that exist, and what each flavor requires of the others.
    pub(super) fn check_stack(&self, stack: &StackRecord) -> Result<()> {
        self.check_stack_with(stack, &[])
    }

    /// [`Self::check_stack`], with `pending` components (about to be written in the same
    /// batch) taking precedence over the stored ones.
    pub(super) fn check_stack_with(
        &self,
        stack: &StackRecord,
        pending: &[ComponentRecord],
    ) -> Result<()> {
        // On a team server, a stack holds only components its user may read: put in a
        // stack of one's own, a restricted stack's component could be exported or set.
        for (t, names) in &stack.components {
            for n in names {
                if !pending
                    .iter()
                    .any(|c| c.component_type == *t && &c.name == n)
                {
                    self.require(&crate::Need::ComponentRead(*t, n.clone()))?;
                }
            }
        }
        let lookup = |t: ComponentType, n: &str| -> Result<ComponentRecord> {
            match pending
                .iter()
                .find(|c| c.component_type == t && c.name == n)
            {
                Some(c) => Ok(c.clone()),
                None => self.component_or_err(t, n),
            }
        };
        for t in ComponentType::ALL {
            let names = stack
                .components
                .get(&t)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if t.required_in_stack() && names.is_empty() {
                return Err(Error::invalid(
                    format!(
                        "stack `{}` has no {}: every stack needs an orchestrator and an artifact store",
                        stack.name,
                        t.label()
                    ),
                    format!("add one with `--{t} NAME` (see `strata {t} list`)"),
                ));
            }
            if names.len() > 1 && !t.allows_many() {
                return Err(Error::invalid(
                    format!(
                        "stack `{}` names {} {}s ({}): a stack has one of each type, except step operators",
                        stack.name,
                        names.len(),
                        t.label(),
                        names.join(", ")
                    ),
                    format!("give `--{t}` once"),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for n in names {
                if !seen.insert(n) {
                    return Err(Error::invalid(
                        format!(
                            "{} `{n}` is named twice in stack `{}`",
                            t.label(),
                            stack.name
                        ),
                        "name each component once",
                    ));
                }
                lookup(t, n)?;
            }
        }
        // Cross-component rules declared by the flavors.
        let members: Vec<(ComponentType, String, String)> = stack
            .ordered()
            .into_iter()
            .map(|(t, n)| {
                let c = lookup(t, &n)?;
                Ok((t, n, c.flavor))
            })
            .collect::<Result<_>>()?;
        for (t, n, flavor) in &members {
            let f = self.flavor_or_err(*t, flavor)?;
            for r in &f.info.requirements {
                let matching: Vec<&(ComponentType, String, String)> = members
                    .iter()
                    .filter(|(mt, _, mf)| {
                        *mt == r.component_type && r.flavor.as_ref().is_none_or(|rf| rf == mf)
                    })
                    .collect();
                let what = match &r.flavor {
                    Some(rf) => format!(
                        "{} of flavor `{rf}`",
                        with_article(&r.component_type.label())
                    ),
                    None => with_article(&r.component_type.label()),
                };
                match r.kind {
                    RequirementKind::Requires if matching.is_empty() => {
                        return Err(Error::invalid(
                            format!(
                                "{} `{n}` (flavor `{flavor}`) needs {what} in stack `{}`: {}",
                                t.label(),
                                stack.name,
                                r.reason
                            ),
                            format!("add one with `--{} NAME`", r.component_type),
                        ));
                    }
                    RequirementKind::Refuses => {
                        if let Some((ot, on, of)) = matching.first() {
                            return Err(Error::invalid(
                                format!(
                                    "{} `{n}` (flavor `{flavor}`) cannot work with {} `{on}` (flavor `{of}`) in stack `{}`: {}",
                                    t.label(),
                                    ot.label(),
                                    stack.name,
                                    r.reason
                                ),
                                format!("use another {} in this stack", ot.label()),
                            ));
                        }
                    }
                    RequirementKind::Requires => {}
                }
            }
        }
        Ok(())
    }

    pub(super) fn stack_view(&self, s: &StackRecord) -> Result<StackView> {
        let active = self.active_stack_opt()?.as_deref() == Some(s.name.as_str());
        let components = s
            .ordered()
            .into_iter()
            .map(|(t, n)| {
                let (flavor, phase, connector) = match self.store.component(t, &n)? {
                    Some(c) => {
                        let phase = self
                            .store
                            .state(&c.id)?
                            .map(|st| st.phase.to_string())
                            .unwrap_or_else(|| "registered".into());
                        let connector = c
                            .connector
                            .as_deref()
                            .and_then(|id| self.connector_name(id));
                        (c.flavor, phase, connector)
                    }
                    None => ("?".into(), "missing".into(), None),
                };
                Ok(StackMember {
                    component_type: t,
                    name: n,
                    flavor,
                    phase,
                    connector,
                })
            })
            .collect::<Result<_>>()?;
        Ok(StackView {
            id: s.id.clone(),
            name: s.name.clone(),
            active,
            components,
        })
    }

    pub fn stack_list(&self) -> Result<Vec<StackView>> {
        let mut out = Vec::new();
        for s in self.store.stacks()? {
            if self.may_see_stack(&s.name)? {
                out.push(self.stack_view(&s)?);
            }
        }
        Ok(out)
    }

    /// The named stack, or the active one.
    pub fn stack_describe(&self, name: Option<&str>) -> Result<StackView> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.stack_get()?,
        };
        let s = self.stack_or_err(&name)?;
        self.stack_view(&s)
    }

    /// The name of the active stack.
    pub fn stack_get(&self) -> Result<String> {
        self.active_stack_opt()?.ok_or_else(|| {
            Error::not_found(
                "an active stack",
                "activate one with `strata stack set NAME`",
            )
        })
    }

    /// Makes `name` the active stack, after checking it and every secret it references.
    pub fn stack_set(&self, name: &str) -> Result<StackView> {
        let s = self.stack_or_err(name)?;
        self.require(&crate::Need::StackRead(name.to_string()))?;
        self.check_stack(&s)?;
        self.check_stack_secrets(&s)?;
        let mut batch = Batch::new();
        batch.put(TreeId::Meta, &self.active_key(), &name.to_string());
        self.store.apply(batch)?;
        self.stack_view(&s)
    }

    /// Every secret reference of every component resolves.
    pub(super) fn check_stack_secrets(&self, s: &StackRecord) -> Result<()> {
        for (t, n) in s.ordered() {
            let c = self.component_or_err(t, &n)?;
            let f = self.flavor_of(&c)?;
            self.context(&f, &c)?;
            self.grant_paths(&f, &c)?;
        }
        Ok(())
    }

    /// Brings every component of the stack (default: the active one) up, storage first,
    /// orchestrator last. Stops at the first failure; what came up stays up.
    pub fn stack_up(&self, name: Option<&str>, on: &mut dyn FnMut(Progress)) -> Result<StackView> {
        self.stack_lifecycle(name, Direction::Up, on)
    }

    /// Brings every component down, orchestrator first; `force` also deprovisions.
    pub fn stack_down(
        &self,
        name: Option<&str>,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<StackView> {
        self.stack_lifecycle(name, Direction::Down { force }, on)
    }

    fn stack_lifecycle(
        &self,
        name: Option<&str>,
        dir: Direction,
        on: &mut dyn FnMut(Progress),
    ) -> Result<StackView> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.stack_get()?,
        };
        let s = self.stack_or_err(&name)?;
        self.check_stack(&s)?;
        if dir == Direction::Up {
            self.check_stack_secrets(&s)?;
        }
        let mut order = s.ordered();
        if dir != Direction::Up {
            order.reverse();
        }
        for (t, n) in order {
            let c = self.component_or_err(t, &n)?;
            self.converge(&c, dir, on)?;
        }
        self.stack_view(&s)
    }

    /// Deletes a stack (not the active one, not `default`); its components stay.
    pub fn stack_delete(&self, name: &str) -> Result<()> {
        self.stack_or_err(name)?;
        self.check_deletable_stack(name)?;
        let mut batch = Batch::new();
        batch.remove(TreeId::Stacks, name);
        self.move_grants(&mut batch, "stack", name, None)?;
        self.store.apply(batch)
    }
}

/// "an alerter", "a step operator".
pub(super) fn with_article(noun: &str) -> String {
    let vowel = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {noun}", if vowel { "an" } else { "a" })
}
