//! strata: ZenML's stack model (stacks of components, each an instance of a flavor,
//! with a provision / resume / suspend / deprovision lifecycle), where every flavor is a
//! WebAssembly component run in a wasmtime sandbox.
//!
//! This is strata as a library (the `strata` command is the `strata-cli` package, built on
//! it). Its entry point is [`Client`], which reaches a home the way the CLI does: through
//! the daemon that serves it when one runs, else opened in this process.
//!
//! ```no_run
//! let client = strata::Client::open_default()?;
//! let stack = client.active_stack()?;
//! println!("{}", stack.name);
//! println!("{}", stack.orchestrator()?.name);
//! println!("{}", stack.artifact_store()?.name);
//! println!("{}", stack.artifact_store()?.config("path").unwrap_or_default());
//! # Ok::<(), strata::Error>(())
//! ```
//!
//! It is not a pipeline framework: it manages the infrastructure a pipeline runs on and
//! hands each run to the stack's orchestrator flavor.

pub mod backend;
pub mod login;
pub mod remote;

// The layers below, for a program that needs more than the client: the model, the
// REST API's types, the service (every rule), and the store and sandbox under it.
pub use strata_api as api;
pub use strata_model::{self as model, error, fsutil, home};
pub use strata_sandbox as sandbox;
pub use strata_service as service;
pub use strata_store as store;

pub use error::{Error, Result};

use std::time::Duration;

pub use backend::{Backend, Members};
pub use remote::Remote;

use crate::home::Home;
use crate::model::ComponentType;
use crate::service::{ComponentView, Service, StackView};
use strata_api::discovery::{DaemonFile, DaemonLock};

/// A strata home, served by a daemon or opened in this process.
pub struct Client {
    backend: Box<dyn Backend>,
}

/// A stack and the means to look at its components.
pub struct Stack<'a> {
    client: &'a Client,
    view: StackView,
    pub name: String,
}

impl Client {
    /// The home in `STRATA_HOME`, or the default one (initialised if new).
    pub fn open_default() -> Result<Client> {
        Self::open(Home::resolve(None)?)
    }

    /// The home `home`: through its daemon when one runs, else opened in this process.
    pub fn open(home: Home) -> Result<Client> {
        Ok(Client {
            backend: connect(home)?,
        })
    }

    /// The home opened in this process (refused while a daemon holds it).
    pub fn embedded(home: Home) -> Result<Client> {
        Ok(Client {
            backend: Box::new(Service::open(home)?),
        })
    }

    /// Every operation, as the CLI has them.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The active stack (ZenML: `Client().active_stack`).
    pub fn active_stack(&self) -> Result<Stack<'_>> {
        let view = self.backend.stack_describe(None)?;
        Ok(Stack {
            client: self,
            name: view.name.clone(),
            view,
        })
    }
}

impl Stack<'_> {
    /// The stack's component of type `t`, if it has one.
    pub fn component(&self, t: ComponentType) -> Result<Option<ComponentView>> {
        match self.view.components.iter().find(|m| m.component_type == t) {
            Some(m) => Ok(Some(
                self.client.backend.component_describe(t, &m.name, false)?,
            )),
            None => Ok(None),
        }
    }

    pub fn orchestrator(&self) -> Result<ComponentView> {
        self.required(ComponentType::Orchestrator)
    }

    pub fn artifact_store(&self) -> Result<ComponentView> {
        self.required(ComponentType::ArtifactStore)
    }

    fn required(&self, t: ComponentType) -> Result<ComponentView> {
        self.component(t)?.ok_or_else(|| Error::Corrupt {
            key: format!("stacks/{}", self.name),
            reason: format!("the stack has no {}", t.label()),
        })
    }

    pub fn view(&self) -> &StackView {
        &self.view
    }
}

/// The backend for `home`, chosen as the CLI chooses: its daemon when one runs (unless
/// `STRATA_NO_DAEMON` is set, which is refused while one holds the home), else the home
/// opened in this process.
pub fn connect(home: Home) -> Result<Box<dyn Backend>> {
    match find(&home) {
        Found::Daemon(d) => Ok(Box::new(Remote::new(d))),
        Found::Unreachable(e) => Err(e),
        Found::None => Ok(Box::new(Service::open(home)?)),
    }
}

/// The backend the CLI uses: a home given explicitly (`home`, or `STRATA_HOME`) is
/// local; else the team server of `strata login` when there is one; else the default home.
pub fn connect_default(home: Option<std::path::PathBuf>) -> Result<Box<dyn Backend>> {
    let explicit = home.is_some() || std::env::var_os("STRATA_HOME").is_some_and(|v| !v.is_empty());
    if !explicit && let Some(l) = login::read()? {
        return Ok(Box::new(Remote::server(&l)?));
    }
    connect(Home::resolve(home)?)
}

/// What serves a home.
pub enum Found {
    /// No daemon: the home is opened in-process.
    None,
    /// A daemon that runs, as its `daemon.json` describes it.
    Daemon(DaemonFile),
    /// A daemon holds the home but may not (or cannot) be used.
    Unreachable(Error),
}

/// Looks for a live daemon of `home`. `STRATA_NO_DAEMON=1` asks for the home to be
/// opened in-process, which is refused while a daemon holds it.
pub fn find(home: &Home) -> Found {
    let d = match DaemonFile::read(home) {
        Some(d) if d.is_running() => d,
        // A daemon that holds its lock but has not written its file yet is opening the
        // store: wait for it rather than fail on the store's lock.
        _ if DaemonLock::holder(home).is_some() => match wait_for_file(home) {
            Waited::Listening(d) => d,
            Waited::Ended => return Found::None,
            Waited::Timeout => {
                return Found::Unreachable(Error::invalid(
                    format!(
                        "a strata daemon is starting for {} and has not begun to listen within 30 s",
                        home.root().display()
                    ),
                    "see `strata daemon logs`, and try again when `strata daemon status` shows it running",
                ));
            }
        },
        _ => return Found::None,
    };
    if std::env::var_os("STRATA_NO_DAEMON").is_some_and(|v| !v.is_empty() && v != "0") {
        return Found::Unreachable(Error::invalid(
            format!(
                "a strata daemon (pid {}, http://{}) holds {}, and STRATA_NO_DAEMON asks not to use it",
                d.pid,
                d.address,
                home.root().display()
            ),
            "unset STRATA_NO_DAEMON so that the command goes through the daemon, or stop it with `strata daemon stop`",
        ));
    }
    Found::Daemon(d)
}

enum Waited {
    Listening(DaemonFile),
    /// The daemon let go of the home (it failed to start, or stopped).
    Ended,
    Timeout,
}

/// Waits up to 30 s for a daemon that is starting to write its file.
fn wait_for_file(home: &Home) -> Waited {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(d) = DaemonFile::read(home).filter(DaemonFile::is_running) {
            return Waited::Listening(d);
        }
        if DaemonLock::holder(home).is_none() {
            return Waited::Ended;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Waited::Timeout
}
