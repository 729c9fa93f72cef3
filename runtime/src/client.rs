//! The library's front door, shaped like ZenML's `Client()`: open a home, look at the
//! active stack and its components, and run any operation the CLI runs.
//!
//! A [`Client`] is served the way the CLI is: by the daemon that serves the home when
//! one runs (each operation a call of its REST API), else by the home opened in this
//! process. Either way it answers the same.

pub mod backend;
pub mod remote;

use std::time::Duration;

pub use backend::{Backend, Members};
pub use remote::Remote;

use crate::daemon::{DaemonFile, DaemonLock};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::ComponentType;
use crate::service::{ComponentView, Service, StackView};

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

impl ComponentView {
    /// A configuration value (with defaults filled in), e.g. an artifact store's `path`.
    pub fn config(&self, key: &str) -> Option<String> {
        self.config
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.clone())
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
