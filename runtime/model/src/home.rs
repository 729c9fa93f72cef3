//! strata's home directory: `STRATA_HOME`, or `strata` in the user's data directory
//! (`~/.local/share/strata` on Linux).
//!
//! ```text
//! db/             the sled database (flavors, components, stacks, secrets)
//! db/wasm/        flavor code, one `<sha256>.wasm` per flavor, checked when read
//! cache/          compiled flavors, one folder per engine configuration
//! stores/default  the default local artifact store
//! secret.key      the key secrets are encrypted with (0600)
//! daemon.json     address, pid, start time and token of a running daemon (0600)
//! daemon.lock     held by the running daemon, so that only one serves the home
//! daemon.log      what a daemon started in the background logs
//! operations.json the daemon's REST lifecycle operations, kept across restarts
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
    /// [`Home::protected`], worked out once (it resolves symlinks on disk).
    protected: std::sync::Arc<std::sync::OnceLock<crate::model::Protected>>,
}

impl Home {
    /// The home named by `explicit`, else `STRATA_HOME`, else the user's data directory.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Home> {
        let root = match explicit.or_else(|| {
            std::env::var_os("STRATA_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        }) {
            Some(p) => p,
            None => dirs::data_dir().map(|d| d.join("strata")).ok_or_else(|| {
                Error::invalid(
                    "cannot find a data directory for strata's home",
                    "set STRATA_HOME to a directory strata may use",
                )
            })?,
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("reading the current directory", e))?
                .join(root)
        };
        Ok(Home::at(root))
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home {
            root: root.into(),
            protected: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn key_file(&self) -> PathBuf {
        self.root.join("secret.key")
    }

    pub fn daemon_file(&self) -> PathBuf {
        self.root.join("daemon.json")
    }

    /// The default stack's artifact store: a data directory strata makes itself, spelled
    /// without symlinks (grants are opened without following any).
    pub fn default_store_dir(&self) -> PathBuf {
        self.protected().data.join("default")
    }

    /// What no grant may hold or enter: this home, but for the data directories strata
    /// makes for components under `stores/`.
    pub fn protected(&self) -> crate::model::Protected {
        self.protected
            .get_or_init(|| crate::model::Protected::for_home(&self.root))
            .clone()
    }

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| Error::io(format!("creating strata's home {}", self.root.display()), e))
    }
}
