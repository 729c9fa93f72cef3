//! `stack export` / `stack import`: a stack as a YAML file another home can rebuild.
//!
//! The file names each component with its flavor pinned by sha256 (and where the flavor
//! came from), and its configuration as the user gave it: secret references stay
//! `{{name.key}}`, never resolved. Import checks everything first and writes the stack
//! and its new components in one batch, so a refused import changes nothing.

use std::collections::BTreeMap;
#[allow(unused_imports)]
use strata_api::views::*;

use super::components::check_name;
use super::{Service, StackView, new_id};
use crate::error::{Error, Result};
use crate::model::{
    ComponentRecord, ComponentState, ComponentType, FlavorSource, StackRecord, now_ms, short_sha,
};
use crate::store::{Batch, TreeId, type_key};

impl Service {
    pub fn stack_export(&self, name: &str) -> Result<StackExport> {
        let s = self.stack_or_err(name)?;
        let components = s
            .ordered()
            .into_iter()
            .map(|(t, n)| {
                let c = self.component_or_err(t, &n)?;
                let f = self.flavor_of(&c)?;
                Ok(ExportedComponent {
                    component_type: t,
                    name: n,
                    flavor: ExportedFlavor {
                        name: f.info.name.clone(),
                        sha256: f.sha256.clone(),
                        source: match &f.source {
                            FlavorSource::BuiltIn => "built-in".into(),
                            FlavorSource::File { path, .. } => path.clone(),
                        },
                    },
                    connector: match &c.connector {
                        Some(id) => {
                            let r = self.connector_by_id(id)?;
                            Some(ExportedConnector {
                                name: r.name,
                                kind: r.kind,
                            })
                        }
                        None => None,
                    },
                    config: c.config,
                    limits: c.limits,
                })
            })
            .collect::<Result<_>>()?;
        Ok(StackExport {
            format: EXPORT_FORMAT,
            strata_version: env!("CARGO_PKG_VERSION").into(),
            stack: s.name,
            components,
        })
    }

    /// Rebuilds an exported stack, as `name` or the name in the file. A component whose
    /// name is free is created; one registered with the same flavor and configuration is
    /// reused; one whose name is taken by a different component is created as
    /// `STACK-NAME`. A flavor must be registered with the same code unless `force`.
    pub fn stack_import(
        &self,
        file: &StackExport,
        name: Option<&str>,
        force: bool,
    ) -> Result<ImportReport> {
        if file.format > EXPORT_FORMAT {
            return Err(Error::invalid(
                format!(
                    "the file is in export format {} (written by strata {}); this strata reads format {EXPORT_FORMAT}",
                    file.format, file.strata_version
                ),
                "upgrade strata, or export the stack again with this version",
            ));
        }
        let stack_name = name.unwrap_or(&file.stack);
        check_name("stack", stack_name)?;
        if self.store.stack(stack_name)?.is_some() {
            return Err(Error::exists(
                format!("stack `{stack_name}`"),
                format!("import it under another name: `strata stack import FILE {stack_name}-2`"),
            ));
        }
        let mut report = ImportReport {
            stack: StackView::default(),
            created: Vec::new(),
            reused: Vec::new(),
            renamed: Vec::new(),
            forced: Vec::new(),
        };
        let now = now_ms();
        let mut batch = Batch::new();
        let mut pending: Vec<ComponentRecord> = Vec::new();
        let mut members: BTreeMap<ComponentType, Vec<String>> = BTreeMap::new();
        for e in &file.components {
            let t = e.component_type;
            let label = format!("{} `{}`", t.label(), e.name);
            check_name(&t.label(), &e.name)?;
            if e.flavor.sha256.len() != 64
                || !e.flavor.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(Error::invalid(
                    format!("the sha256 of {label}'s flavor in the file is not 64 hex digits"),
                    "give a file written by `strata stack export`, unedited",
                ));
            }
            let f = self.store.flavor(t, &e.flavor.name)?.ok_or_else(|| {
                Error::not_found(
                    format!("{} flavor `{}` (needed by {label})", t.label(), e.flavor.name),
                    match e.flavor.source.as_str() {
                        "built-in" => "it was built into another strata version; install that version, or change the flavor in the file".to_string(),
                        path => format!("register it first: `strata {t} flavor register {path}` (the file pins sha256:{})", short_sha(&e.flavor.sha256)),
                    },
                )
            })?;
            if f.sha256 != e.flavor.sha256 {
                if !force {
                    return Err(Error::invalid(
                        format!(
                            "{} flavor `{}` (needed by {label}) is registered with other code: the file pins sha256:{}, this home has sha256:{}",
                            t.label(),
                            f.info.name,
                            short_sha(&e.flavor.sha256),
                            short_sha(&f.sha256)
                        ),
                        "register the same .wasm the stack was exported with, or pass --force to use the registered code",
                    ));
                }
                report
                    .forced
                    .push(format!("{} flavor `{}`", t.label(), f.info.name));
            }
            super::flavors::check_limits(&e.limits)?;
            let subject = format!("{label} (flavor `{}`)", f.info.name);
            let config = self.checked_config(&f, &subject, &e.config)?;
            let connector = match &e.connector {
                None => None,
                Some(x) => Some(self.imported_connector(&label, x)?),
            };
            let existing = self.store.component(t, &e.name)?;
            let chosen = match existing {
                Some(c)
                    if c.flavor == e.flavor.name
                        && c.config == config
                        && c.limits == e.limits
                        && c.connector == connector =>
                {
                    report.reused.push(label.clone());
                    c.name
                }
                Some(_) => {
                    let alt = format!("{stack_name}-{}", e.name);
                    if self.store.component(t, &alt)?.is_some()
                        || pending
                            .iter()
                            .any(|p| p.component_type == t && p.name == alt)
                    {
                        return Err(Error::exists(
                            format!(
                                "{label} (with another configuration) and {} `{alt}`",
                                t.label()
                            ),
                            format!(
                                "rename one of them (`strata {t} rename {} NEW`), or import under another stack name",
                                e.name
                            ),
                        ));
                    }
                    report.renamed.push((e.name.clone(), alt.clone()));
                    alt
                }
                None => e.name.clone(),
            };
            check_name(&t.label(), &chosen)?;
            if self.store.component(t, &chosen)?.is_none() {
                if pending
                    .iter()
                    .any(|p| p.component_type == t && p.name == chosen)
                {
                    return Err(Error::invalid(
                        format!("{label} appears twice in the file"),
                        "name each component once",
                    ));
                }
                let c = ComponentRecord {
                    id: new_id(),
                    limits: e.limits,
                    name: chosen.clone(),
                    component_type: t,
                    flavor: f.info.name.clone(),
                    config,
                    created_at: now,
                    connector: connector.clone(),
                };
                self.check_team_use(&f, &c, None)?;
                batch
                    .put(TreeId::Components, &type_key(t, &chosen), &c)
                    .put(TreeId::States, &c.id, &ComponentState::new(now));
                report.created.push(format!("{} `{chosen}`", t.label()));
                pending.push(c);
            }
            members.entry(t).or_default().push(chosen);
        }
        let stack = StackRecord {
            id: new_id(),
            name: stack_name.to_string(),
            components: members,
            created_at: now,
        };
        self.check_stack_with(&stack, &pending)?;
        batch.put(TreeId::Stacks, stack_name, &stack);
        self.store.apply(batch)?;
        report.stack = self.stack_view(&stack)?;
        Ok(report)
    }
}
