//! Flavors: registering `.wasm` components, listing and describing them, deleting them.

use std::path::Path;
#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use crate::error::{Error, Result};
use crate::model::{
    ComponentType, FlavorRecord, FlavorSource, LimitOverrides, check_config, now_ms,
};
use crate::sandbox::cache::sha256_hex;
use crate::sandbox::calls::Target;
use crate::sandbox::{Grants, Limits};
use crate::store::{Batch, TreeId, type_key};

/// The limits a flavor registered with `opts` gets: its own, checked, over the defaults.
fn limits_of(opts: &FlavorOptions) -> Result<Limits> {
    let o = LimitOverrides {
        timeout_ms: opts.timeout_ms,
        memory_mb: opts.memory_mb,
    };
    check_limits(&o)?;
    Ok(o.over(Limits::DEFAULT))
}

/// The ranges a deadline and a memory cap may take, for a flavor or a component.
pub(crate) fn check_limits(o: &LimitOverrides) -> Result<()> {
    if let Some(t) = o.timeout_ms.filter(|t| !(10..=600_000).contains(t)) {
        return Err(Error::invalid(
            format!("--timeout-ms {t} is out of range"),
            "give a deadline from 10 to 600000 milliseconds",
        ));
    }
    if let Some(m) = o.memory_mb.filter(|m| !(1..=4096).contains(m)) {
        return Err(Error::invalid(
            format!("--memory-mb {m} is out of range"),
            "give a cap from 1 to 4096 MiB",
        ));
    }
    Ok(())
}

impl Service {
    pub(super) fn view(&self, f: &FlavorRecord) -> Result<FlavorView> {
        let ready = self.store.contains(TreeId::Blobs, &f.sha256)?;
        let components = self
            .flavor_users(f.info.component_type, &f.info.name)?
            .len();
        Ok(FlavorView {
            flavor: f.info.name.clone(),
            component_type: f.info.component_type,
            integration: match &f.source {
                FlavorSource::BuiltIn => "built-in".into(),
                FlavorSource::File {
                    integration: Some(i),
                    ..
                } => i.clone(),
                FlavorSource::File { .. } => "custom".into(),
            },
            ready_to_use: ready,
            source: f.source_label(),
            sha256: f.sha256.clone(),
            version: f.info.version.clone(),
            description: f.info.description.clone(),
            components,
        })
    }

    fn detail(&self, record: FlavorRecord) -> Result<FlavorDetail> {
        Ok(FlavorDetail {
            view: self.view(&record)?,
            record,
        })
    }

    pub fn flavor_list(&self, t: Option<ComponentType>) -> Result<Vec<FlavorView>> {
        self.store
            .flavors(t)?
            .into_iter()
            .map(|f| self.view(&f))
            .collect()
    }

    pub fn flavor_describe(&self, t: ComponentType, name: &str) -> Result<FlavorDetail> {
        let f = self.flavor_or_err(t, name)?;
        self.detail(f)
    }

    pub(crate) fn flavor_or_err(&self, t: ComponentType, name: &str) -> Result<FlavorRecord> {
        self.store.flavor(t, name)?.ok_or_else(|| {
            let known: Vec<String> = self
                .store
                .flavors(Some(t))
                .unwrap_or_default()
                .into_iter()
                .map(|f| f.info.name)
                .collect();
            let have = if known.is_empty() {
                "none is registered".to_string()
            } else {
                format!("registered: {}", known.join(", "))
            };
            Error::not_found(
                format!("{} flavor `{name}`", t.label()),
                format!("{have}; add one with `strata {t} flavor register PATH.wasm`"),
            )
        })
    }

    /// Registers the flavor in the `.wasm` file at `path` as a flavor of type `t`.
    /// `t` is the type the caller expects; `None` takes the one `describe` gives.
    pub fn flavor_register(
        &self,
        t: Option<ComponentType>,
        path: &Path,
        opts: FlavorOptions,
    ) -> Result<FlavorDetail> {
        self.require_server_path("registering a flavor from a file")?;
        let path = &self.resolve(path);
        let bytes = std::fs::read(path).map_err(|e| Error::Invalid {
            what: format!("cannot read `{}`: {e}", path.display()),
            hint: "give the path of a `.wasm` component, e.g. target/wasm32-wasip2/release/my_flavor.wasm".into(),
        })?;
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let sha = sha256_hex(&bytes);
        let source = FlavorSource::File {
            path: abs.display().to_string(),
            integration: None,
        };
        let record = self.register_flavor_bytes(t, &bytes, source, &sha, opts, false)?;
        self.detail(record)
    }

    /// Registers a flavor sent over the daemon's REST API: `bytes` are the `.wasm`, and
    /// `name` is what the client called the file (shown as its source, `upload:NAME`).
    pub fn flavor_upload(
        &self,
        t: Option<ComponentType>,
        name: &str,
        bytes: &[u8],
        opts: FlavorOptions,
    ) -> Result<FlavorDetail> {
        crate::model::text::check_name_chars("filename", name)?;
        let sha = sha256_hex(bytes);
        let source = FlavorSource::File {
            path: format!("upload:{name}"),
            integration: None,
        };
        let record = self.register_flavor_bytes(t, bytes, source, &sha, opts, false)?;
        self.detail(record)
    }

    /// Registers any flavor, built-in or from a file: [`Self::check_flavor_bytes`], then
    /// its writes.
    pub(super) fn register_flavor_bytes(
        &self,
        t: Option<ComponentType>,
        bytes: &[u8],
        source: FlavorSource,
        sha: &str,
        opts: FlavorOptions,
        builtin: bool,
    ) -> Result<FlavorRecord> {
        let (record, batch) = self.check_flavor_bytes(t, bytes, source, sha, opts, builtin)?;
        self.store.apply(batch)?;
        Ok(record)
    }

    /// Every check of registering a flavor, and the writes that would register it, not yet
    /// applied (so several flavors can land in one batch). `t` is the type the caller
    /// expects; `None` takes the one the flavor's `describe` gives.
    pub(super) fn check_flavor_bytes(
        &self,
        t: Option<ComponentType>,
        bytes: &[u8],
        source: FlavorSource,
        sha: &str,
        opts: FlavorOptions,
        builtin: bool,
    ) -> Result<(FlavorRecord, Batch)> {
        let limits = limits_of(&opts)?;
        let label = match &source {
            FlavorSource::BuiltIn => "built-in flavor".to_string(),
            FlavorSource::File { path, .. } => path.clone(),
        };
        let sandbox = self.sandbox()?;
        let (loaded, cache_hash) = sandbox.inspect(&label, sha, bytes)?;
        let target = Target {
            sandbox,
            loaded: &loaded,
            flavor: &label,
            grants: &Grants::default(),
            limits: &limits,
        };
        let info = target.describe()?.value;
        let refuse = |reason: String, hint: String| Error::NotAFlavor {
            path: label.clone(),
            reason,
            hint,
        };
        let t = t.unwrap_or(info.component_type);
        if info.component_type != t {
            return Err(refuse(
                format!(
                    "it describes itself as {} flavor (`{}`), not {} flavor",
                    super::stacks::with_article(&info.component_type.label()),
                    info.name,
                    super::stacks::with_article(&t.label())
                ),
                format!(
                    "register it with `strata {} flavor register {label}`",
                    info.component_type
                ),
            ));
        }
        let problems = info.problems();
        if !problems.is_empty() {
            return Err(refuse(
                format!("its description is not valid: {}", problems.join("; ")),
                "fix `describe` in the flavor and rebuild it".into(),
            ));
        }
        // Extra origins: granted only once the user has seen and accepted each.
        let mut accepted = Vec::new();
        for given in &opts.allow_origins {
            let o = crate::model::origin::Origin::of_url(given)
                .map_err(|e| {
                    Error::invalid(
                        format!("--allow-origin {e}"),
                        "give an origin as `https://host[:port]`",
                    )
                })?
                .to_string();
            if !info.origins.contains(&o) {
                return Err(Error::invalid(
                    format!(
                        "--allow-origin={given}: flavor `{}` does not ask for {o}",
                        info.name
                    ),
                    if info.origins.is_empty() {
                        "it declares no extra origin: drop --allow-origin; a `url` field's value is granted by itself".to_string()
                    } else {
                        format!("it asks for: {}", info.origins.join(", "))
                    },
                ));
            }
            accepted.push(o);
        }
        let unaccepted: Vec<&String> = info
            .origins
            .iter()
            .filter(|o| !accepted.contains(o))
            .collect();
        if !unaccepted.is_empty() && !builtin {
            return Err(refuse(
                format!(
                    "it asks to reach {} beyond its `url` fields, which you have not accepted",
                    unaccepted
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "if you trust it to reach them, register it again with {}",
                    unaccepted
                        .iter()
                        .map(|o| format!("--allow-origin={o}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        if t == ComponentType::ArtifactStore && !loaded.exports_artifact_store() {
            return Err(refuse(
                "an artifact store must export `strata:flavor/artifact-store`".into(),
                "build it for the `artifact-store-flavor` world".into(),
            ));
        }
        if t == ComponentType::Orchestrator && !loaded.exports_orchestrator() {
            return Err(refuse(
                "an orchestrator must export `strata:flavor/orchestrator`".into(),
                "build it for the `orchestrator-flavor` world".into(),
            ));
        }
        let existing = self.store.flavor(t, &info.name)?;
        if let Some(old) = &existing
            && !builtin
        {
            if old.is_builtin() {
                return Err(Error::exists(
                    format!("built-in {} flavor `{}`", t.label(), info.name),
                    "built-in flavors cannot be replaced: give yours another name in `describe`",
                ));
            }
            if old.sha256 == sha {
                return Err(Error::exists(
                    format!("{} flavor `{}` with this exact code", t.label(), info.name),
                    format!(
                        "nothing to do; see it with `strata {t} flavor describe {}`",
                        info.name
                    ),
                ));
            }
            if !opts.replace {
                return Err(Error::exists(
                    format!(
                        "{} flavor `{}` (other code, sha256:{})",
                        t.label(),
                        info.name,
                        crate::model::short_sha(&old.sha256)
                    ),
                    "pass --replace to replace its code (components of this flavor keep their configuration)",
                ));
            }
            // New code runs with every component of this flavor's secrets, directories and
            // connector: on a team server, only who may change each of them replaces it.
            for c in self.store.components(Some(t))? {
                if c.flavor == info.name {
                    self.require(&crate::Need::Component(t, c.name.clone()))?;
                    self.check_team_use(old, &c, None)?;
                }
            }
            // The new schema must accept every existing component's configuration.
            for c in self
                .store
                .components(Some(t))?
                .into_iter()
                .filter(|c| c.flavor == info.name)
            {
                if let Err(p) = check_config(&info, &c.config, &self.cwd, &self.protected()) {
                    return Err(Error::Config {
                        subject: format!(
                            "the new code of flavor `{}` does not accept the configuration of {} `{}`",
                            info.name,
                            t.label(),
                            c.name
                        ),
                        problems: p,
                        hint: format!("update or delete {} `{}` first", t.label(), c.name),
                    });
                }
            }
        }
        let record = FlavorRecord {
            allowed_origins: info.origins.clone(),
            info,
            sha256: sha.to_string(),
            size: bytes.len() as u64,
            source,
            registered_at: now_ms(),
            limits,
        };
        let key = type_key(t, &record.info.name);
        let mut batch = Batch::new();
        batch
            .put(TreeId::Flavors, &key, &record)
            .put_raw(TreeId::Blobs, sha, bytes.to_vec())
            .put(
                TreeId::Compiled,
                &format!("{}/{sha}", sandbox.engine_key()),
                &cache_hash,
            );
        if let Some(old) = existing.filter(|o| o.sha256 != sha)
            && !self.blob_used_elsewhere(&old.sha256, &key)?
        {
            batch.remove(TreeId::Blobs, &old.sha256);
        }
        Ok((record, batch))
    }

    /// The names of the components of flavor `name`.
    pub(super) fn flavor_users(&self, t: ComponentType, name: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .components(Some(t))?
            .into_iter()
            .filter(|c| c.flavor == name)
            .map(|c| c.name)
            .collect())
    }

    fn blob_used_elsewhere(&self, sha: &str, except_key: &str) -> Result<bool> {
        Ok(self
            .store
            .scan::<FlavorRecord>(TreeId::Flavors, "")?
            .iter()
            .any(|(k, f)| k != except_key && f.sha256 == sha))
    }

    /// Deletes a custom flavor no component uses.
    pub fn flavor_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        let f = self.flavor_or_err(t, name)?;
        if f.is_builtin() {
            return Err(Error::invalid(
                format!(
                    "{} flavor `{name}` is built in and cannot be deleted",
                    t.label()
                ),
                "built-in flavors ship with strata; you can simply not use them",
            ));
        }
        let users = self.flavor_users(t, name)?;
        if !users.is_empty() {
            return Err(Error::invalid(
                format!(
                    "{} flavor `{name}` is used by {}: {}",
                    t.label(),
                    plural(users.len(), "component"),
                    users.join(", ")
                ),
                format!("delete them first with `strata {t} delete NAME`"),
            ));
        }
        let key = type_key(t, name);
        let mut batch = Batch::new();
        batch.remove(TreeId::Flavors, &key);
        if !self.blob_used_elsewhere(&f.sha256, &key)? {
            batch.remove(TreeId::Blobs, &f.sha256);
            for (k, _) in self.store.scan::<String>(TreeId::Compiled, "")? {
                if k.ends_with(&f.sha256) {
                    batch.remove(TreeId::Compiled, &k);
                }
            }
        }
        self.store.apply(batch)
    }
}

pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
