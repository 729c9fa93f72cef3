//! Integrations: bundles of flavors installed together (ZenML's `integration install`).
//!
//! An integration is a directory of flavor components (`*.wasm`); its name is the
//! directory's name. strata looks for integrations in `STRATA_HOME/integrations/` and in
//! every directory listed in `STRATA_INTEGRATIONS` (separated by `:`); `install` also
//! takes a directory path. The integrations built into the binary (`s3`, `mlflow`,
//! `oci`, `webhook`: [`crate::builtin::integrations`]) come after those directories, so
//! a directory of the same name replaces one. Installing checks every file first (each
//! must be a flavor, and no name may clash with other code unless `replace`), then
//! registers them.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use strata_api::views::*;

use super::{FlavorOptions, Service};
use crate::error::{Error, Result};
use crate::model::{ComponentType, FlavorSource};
use crate::sandbox::cache::sha256_hex;
use crate::store::Batch;

impl Service {
    /// The directories searched for integrations, in order.
    fn integration_roots(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.home.root().join("integrations")];
        if let Some(extra) = std::env::var_os("STRATA_INTEGRATIONS") {
            roots.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
        }
        roots
    }

    /// Every integration on the search path (the first of a name wins).
    pub fn integration_list(&self) -> Result<Vec<IntegrationView>> {
        let mut out: Vec<IntegrationView> = Vec::new();
        for root in self.integration_roots() {
            let Ok(entries) = std::fs::read_dir(&root) else {
                continue;
            };
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for dir in dirs {
                let name = dir_name(&dir);
                if out.iter().any(|i| i.name == name) {
                    continue;
                }
                let files = read_dir_files(&dir)?;
                out.push(self.integration_view(&name, dir.display().to_string(), &files)?);
            }
        }
        for b in crate::builtin::integrations() {
            if !out.iter().any(|i| i.name == b.name) {
                out.push(self.integration_view(b.name, BUILT_IN.to_string(), &builtin_files(b))?);
            }
        }
        Ok(out)
    }

    fn integration_view(
        &self,
        name: &str,
        path: String,
        files: &[File<'_>],
    ) -> Result<IntegrationView> {
        let flavors = self.store.flavors(None)?;
        let files: Vec<IntegrationFile> = files
            .iter()
            .map(|file| {
                let sha = sha256_hex(&file.bytes);
                let registered_as = flavors
                    .iter()
                    .find(|f| f.sha256 == sha)
                    .map(|f| format!("{}/{}", f.info.component_type, f.info.name));
                IntegrationFile {
                    file: file.name.clone(),
                    sha256: sha,
                    registered_as,
                }
            })
            .collect();
        Ok(IntegrationView {
            name: name.to_string(),
            path,
            installed: !files.is_empty() && files.iter().all(|f| f.registered_as.is_some()),
            files,
        })
    }

    /// The name and the files of integration `name_or_path`: a directory on the search
    /// path, a directory path, or an integration built into strata.
    fn integration_files(&self, name_or_path: &str) -> Result<(String, Vec<File<'static>>)> {
        let as_path = &self.resolve(Path::new(name_or_path));
        // A request without a working directory (REST) names a directory absolutely.
        if name_or_path.contains('/') || (as_path.is_absolute() && as_path.is_dir()) {
            self.require_server_path("installing an integration from a directory")?;
            if !as_path.is_dir() {
                return Err(Error::not_found(
                    format!("integration directory `{name_or_path}`"),
                    "give the directory holding the integration's .wasm files",
                ));
            }
            let dir = std::fs::canonicalize(as_path)
                .map_err(|e| Error::io(format!("reading {name_or_path}"), e))?;
            return Ok((dir_name(&dir), checked_files(&dir)?));
        }
        let roots = self.integration_roots();
        for root in &roots {
            let dir = root.join(name_or_path);
            if dir.is_dir() {
                return Ok((name_or_path.to_string(), checked_files(&dir)?));
            }
        }
        if let Some(b) = crate::builtin::integrations()
            .iter()
            .find(|b| b.name == name_or_path)
        {
            return Ok((b.name.to_string(), builtin_files(b)));
        }
        let known: Vec<String> = self
            .integration_list()?
            .into_iter()
            .map(|i| i.name)
            .collect();
        Err(Error::not_found(
            format!("integration `{name_or_path}`"),
            format!(
                "{}; strata looks in {} (add directories with STRATA_INTEGRATIONS=DIR:DIR), or give a directory path",
                if known.is_empty() {
                    "no integrations are available".to_string()
                } else {
                    format!("available: {}", known.join(", "))
                },
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// Registers every flavor of an integration. Checks all of them before registering
    /// any: a file that is not a flavor, or a name taken by other code (without
    /// `replace`), refuses the whole install.
    pub fn integration_install(&self, name_or_path: &str, replace: bool) -> Result<Vec<Installed>> {
        let (name, files) = self.integration_files(name_or_path)?;
        let registered = self.store.flavors(None)?;
        let mut batch = Batch::new();
        let mut planned: Vec<(ComponentType, String, &'static str)> = Vec::new();
        for file in files {
            let label = file.label;
            let bytes = file.bytes;
            let sha = sha256_hex(&bytes);
            if let Some(f) = registered.iter().find(|f| f.sha256 == sha) {
                planned.push((
                    f.info.component_type,
                    f.info.name.clone(),
                    "already installed",
                ));
                continue;
            }
            let source = FlavorSource::File {
                path: label.clone(),
                integration: Some(name.clone()),
            };
            let opts = FlavorOptions {
                replace,
                ..FlavorOptions::default()
            };
            // Every check of `flavor register` runs here, before anything is written.
            let (record, writes) =
                self.check_flavor_bytes(None, &bytes, source, &sha, opts, false)?;
            let (t, flavor) = (record.info.component_type, record.info.name);
            if planned.iter().any(|(pt, pn, _)| *pt == t && *pn == flavor) {
                return Err(Error::invalid(
                    format!(
                        "integration `{name}` holds two {} flavors named `{flavor}` (the second is {label})",
                        t.label()
                    ),
                    "keep one file per flavor in the integration's directory",
                ));
            }
            let outcome = if self.store.flavor(t, &flavor)?.is_some() {
                "replaced"
            } else {
                "installed"
            };
            batch.append(writes);
            planned.push((t, flavor, outcome));
        }
        self.store.apply(batch)?;
        planned
            .into_iter()
            .map(|(t, flavor, outcome)| {
                Ok(Installed {
                    flavor: self.view(&self.flavor_or_err(t, &flavor)?)?,
                    outcome: outcome.to_string(),
                })
            })
            .collect()
    }

    /// Deletes every flavor installed from integration `name`; refused as a whole if
    /// a component still uses one of them.
    pub fn integration_uninstall(&self, name: &str) -> Result<Vec<String>> {
        let flavors: Vec<_> = self
            .store
            .flavors(None)?
            .into_iter()
            .filter(|f| {
                matches!(&f.source, FlavorSource::File { integration: Some(i), .. } if i == name)
            })
            .collect();
        if flavors.is_empty() {
            return Err(Error::not_found(
                format!("installed integration `{name}`"),
                "see what is installed with `strata integration list`",
            ));
        }
        for f in &flavors {
            let t = f.info.component_type;
            let users: Vec<String> = self
                .flavor_users(t, &f.info.name)?
                .into_iter()
                .map(|c| format!("{} `{c}`", t.label()))
                .collect();
            if !users.is_empty() {
                return Err(Error::invalid(
                    format!(
                        "{} flavor `{}` of integration `{name}` is used by {}",
                        t.label(),
                        f.info.name,
                        users.join(", ")
                    ),
                    "delete those components first",
                ));
            }
        }
        let mut removed = Vec::new();
        for f in flavors {
            self.flavor_delete(f.info.component_type, &f.info.name)?;
            removed.push(format!(
                "{} flavor `{}`",
                f.info.component_type.label(),
                f.info.name
            ));
        }
        Ok(removed)
    }
}

/// The path shown for an integration built into strata.
const BUILT_IN: &str = "(built into strata)";

/// One flavor file of an integration.
struct File<'a> {
    /// Its file name.
    name: String,
    /// Where it came from, as a flavor's source shows it.
    label: String,
    bytes: Cow<'a, [u8]>,
}

fn builtin_files(b: &'static crate::builtin::BuiltinIntegration) -> Vec<File<'static>> {
    b.files
        .iter()
        .map(|(file, bytes)| File {
            name: file.to_string(),
            label: format!("{BUILT_IN} {}/{file}", b.name),
            bytes: Cow::Borrowed(*bytes),
        })
        .collect()
}

/// Every `.wasm` file of `dir`, read.
fn read_dir_files(dir: &Path) -> Result<Vec<File<'static>>> {
    wasm_files(dir)?
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            Ok(File {
                name: dir_name(&p),
                label: p.display().to_string(),
                bytes: Cow::Owned(bytes),
            })
        })
        .collect()
}

/// [`read_dir_files`], refusing a directory without any.
fn checked_files(dir: &Path) -> Result<Vec<File<'static>>> {
    let files = read_dir_files(dir)?;
    if files.is_empty() {
        return Err(Error::invalid(
            format!(
                "integration `{}` ({}) has no .wasm files",
                dir_name(dir),
                dir.display()
            ),
            "put the flavor components (*.wasm) of the integration in that directory",
        ));
    }
    Ok(files)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// The `.wasm` files directly in `dir`, sorted.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}
