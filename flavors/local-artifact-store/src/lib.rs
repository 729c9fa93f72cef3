//! strata's `local` artifact store: keeps a pipeline's artifacts in a directory of this
//! machine, as ZenML's local artifact store does.
//!
//! It is a WebAssembly component built against the `artifact-store-flavor` world. Its one
//! configuration field, `path`, is an absolute directory that strata preopens at the same
//! path inside the sandbox (creating it first if needed): the only part of the file system
//! the component sees. `provision` marks the directory as this component's with a
//! `.strata-artifact-store` file and creates `artifacts/`; `deprovision` removes exactly
//! what `provision` created. The `artifact-store` functions work on paths relative to the
//! root, refused if they leave it or touch the marker.

mod lifecycle;
mod store;

#[cfg(test)]
mod tests;

wit_bindgen::generate!({
    path: "../../wit",
    world: "strata:flavor/artifact-store-flavor",
    generate_all,
});

use exports::strata::flavor::artifact_store::{
    DirEntry, FileStat, Guest as ArtifactStore, WriteMode,
};
use exports::strata::flavor::lifecycle::{Guest as Lifecycle, StateResult};
use lifecycle::{MarkerStatus, StoreState};
use store::{Mode, Store};
use strata::flavor::host::log;
use strata::flavor::types::{
    ComponentType, Context, FieldError, FieldKind, FieldSpec, FlavorInfo, Level, Status,
};
use strata_flavor_sdk::{Config, Problems, State};

/// The store described by the configuration of `ctx`.
fn open(ctx: &Context) -> Result<Store, String> {
    Store::new(Config::new(&ctx.config).require("path")?)
}

/// Reads the state strata handed back with `ctx`.
fn load(ctx: &Context) -> Result<StoreState, String> {
    State::<StoreState>::decode(ctx.state.as_deref())
}

/// Reads the state, or starts afresh (with a warning in the log) if it is unreadable:
/// for the steps that must work whatever state they find, because the marker on disk
/// says what exists.
fn load_or_default(ctx: &Context) -> StoreState {
    load(ctx).unwrap_or_else(|message| {
        log(
            Level::Warn,
            &format!("ignoring unreadable state: {message}"),
        );
        StoreState::default()
    })
}

/// Encodes `state` as the new state to hand back to strata.
fn save(state: &StoreState) -> StateResult {
    State::encode(state).map(Some)
}

/// Checks that the store of `ctx` is provisioned for this component and writable.
fn check_usable(ctx: &Context, store: &Store, action: &str) -> Result<(), String> {
    let marker = lifecycle::read_marker(store.root(), &ctx.component_id);
    if let Some(reason) =
        lifecycle::not_provisioned_reason(store.root(), &marker, &ctx.component_name)
    {
        return Err(format!(
            "cannot {action} artifact store `{}`: {reason}",
            ctx.component_name
        ));
    }
    lifecycle::probe_writable(store.root()).map_err(|reason| {
        format!(
            "cannot {action} artifact store `{}`: {reason}",
            ctx.component_name
        )
    })
}

/// The `local` artifact store.
struct LocalArtifactStore;

impl Lifecycle for LocalArtifactStore {
    fn describe() -> FlavorInfo {
        FlavorInfo {
            name: "local".to_string(),
            component_type: ComponentType::ArtifactStore,
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Keeps artifacts in a directory of this machine.".to_string(),
            config: vec![FieldSpec {
                name: "path".to_string(),
                kind: FieldKind::Path,
                required: true,
                default: None,
                description: "Root directory of the store, on this machine".to_string(),
            }],
            supported_schemes: vec![String::new()],
            requirements: Vec::new(),
            origins: Vec::new(),
        }
    }

    fn validate(config: Vec<(String, String)>) -> Result<(), Vec<FieldError>> {
        let config = Config::new(&config);
        let mut problems = Problems::new();
        if let Some(root) = problems.check("path", config.require("path").map(str::to_string)) {
            problems.check("path", store::check_root(&root));
        }
        problems.into_result().map_err(|found| {
            found
                .into_iter()
                .map(|problem| FieldError {
                    field: problem.field,
                    message: problem.message,
                })
                .collect()
        })
    }

    fn provision(ctx: Context) -> StateResult {
        let previous = load(&ctx)?;
        let store = open(&ctx)?;
        let state = lifecycle::provision(store.root(), &ctx.component_id, &previous)?;
        log(
            Level::Info,
            &format!(
                "artifact store at {} is provisioned; created by this store: {}",
                store.root().display(),
                state.created.join(", ")
            ),
        );
        save(&state)
    }

    fn deprovision(ctx: Context) -> StateResult {
        let previous = load_or_default(&ctx);
        let store = open(&ctx)?;
        let (removed, warning) =
            lifecycle::deprovision(store.root(), &ctx.component_id, &previous)?;
        if let Some(warning) = warning {
            log(Level::Warn, &warning);
        }
        log(
            Level::Info,
            &if removed.is_empty() {
                format!("nothing left to remove in {}", store.root().display())
            } else {
                format!(
                    "removed from {}: {}",
                    store.root().display(),
                    removed.join(", ")
                )
            },
        );
        save(&StoreState::default())
    }

    fn resume(ctx: Context) -> StateResult {
        let mut state = load(&ctx)?;
        let store = open(&ctx)?;
        check_usable(&ctx, &store, "start")?;
        state.provisioned = true;
        state.running = true;
        save(&state)
    }

    fn suspend(ctx: Context) -> StateResult {
        let mut state = load_or_default(&ctx);
        state.running = false;
        save(&state)
    }

    fn status(ctx: Context) -> Status {
        let store = match open(&ctx) {
            Ok(store) => store,
            Err(message) => {
                return Status {
                    provisioned: false,
                    running: false,
                    detail: message,
                };
            }
        };
        let root = store.root();
        let name = &ctx.component_name;
        if !root.is_dir() {
            return Status {
                provisioned: false,
                running: false,
                detail: format!(
                    "directory {} does not exist: run `strata artifact-store up {name}`",
                    root.display()
                ),
            };
        }
        let marker = lifecycle::read_marker(root, &ctx.component_id);
        if let Some(reason) = lifecycle::not_provisioned_reason(root, &marker, name) {
            return Status {
                provisioned: false,
                running: false,
                detail: reason,
            };
        }
        debug_assert!(matches!(marker, MarkerStatus::Ours(_)));

        let mut missing = Vec::new();
        match load(&ctx) {
            Ok(state) if state.running => {}
            Ok(_) => missing.push(format!("suspended: run `strata artifact-store up {name}`")),
            Err(message) => missing.push(message),
        }
        if let Err(reason) = lifecycle::probe_writable(root) {
            missing.push(reason);
        }
        Status {
            provisioned: true,
            running: missing.is_empty(),
            detail: if missing.is_empty() {
                format!("running: artifacts are kept in {}", root.display())
            } else {
                missing.join("; ")
            },
        }
    }

    fn prepare_pipeline_deployment(
        ctx: Context,
        _runtime: Vec<(String, String)>,
    ) -> Result<(), String> {
        let store = open(&ctx)?;
        if !load(&ctx)?.running {
            return Err(format!(
                "artifact store `{}` is not running: run `strata stack up`",
                ctx.component_name
            ));
        }
        check_usable(&ctx, &store, "use")?;
        log(
            Level::Info,
            &format!("artifacts of this run go to {}", store.root().display()),
        );
        Ok(())
    }
}

impl ArtifactStore for LocalArtifactStore {
    fn exists(ctx: Context, path: String) -> Result<bool, String> {
        open(&ctx)?.exists(&path)
    }

    fn stat(ctx: Context, path: String) -> Result<FileStat, String> {
        let stat = open(&ctx)?.stat(&path)?;
        Ok(FileStat {
            size: stat.size,
            is_dir: stat.is_dir,
            modified_ms: stat.modified_ms,
        })
    }

    fn read(ctx: Context, path: String, offset: u64, length: u64) -> Result<Vec<u8>, String> {
        open(&ctx)?.read(&path, offset, length)
    }

    fn write(ctx: Context, path: String, data: Vec<u8>, mode: WriteMode) -> Result<u64, String> {
        let mode = match mode {
            WriteMode::CreateNew => Mode::CreateNew,
            WriteMode::Truncate => Mode::Truncate,
            WriteMode::Append => Mode::Append,
        };
        open(&ctx)?.write(&path, &data, mode)
    }

    fn list(ctx: Context, path: String) -> Result<Vec<DirEntry>, String> {
        Ok(open(&ctx)?
            .list(&path)?
            .into_iter()
            .map(|entry| DirEntry {
                name: entry.name,
                is_dir: entry.is_dir,
            })
            .collect())
    }

    fn makedirs(ctx: Context, path: String) -> Result<(), String> {
        open(&ctx)?.makedirs(&path)
    }

    fn remove(ctx: Context, path: String, recursive: bool) -> Result<(), String> {
        open(&ctx)?.remove(&path, recursive)
    }

    fn rename(
        ctx: Context,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<(), String> {
        open(&ctx)?.rename(&source, &destination, overwrite)
    }

    fn copy(
        ctx: Context,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<(), String> {
        open(&ctx)?.copy(&source, &destination, overwrite)
    }
}

export!(LocalArtifactStore);
