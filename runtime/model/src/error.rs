//! strata's one error type. Every variant names what failed; [`Error::hint`] says what
//! to do about it. The CLI prints `error: …` then `hint: …`; the daemon maps
//! [`Error::kind`] to an HTTP status.

use std::fmt;

use crate::model::FieldProblem;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a flavor's call went wrong when it did not return an error of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call ran past its wall-clock deadline; `network` is the request it was still
    /// waiting on, as the call's log has it, if the network is why.
    Timeout {
        limit_ms: u64,
        network: Option<String>,
    },
    /// The component tried to grow its memory past the cap.
    Memory { limit_bytes: u64 },
    /// The component overflowed its stack (deep recursion).
    StackOverflow,
    /// The component trapped (a panic, `unreachable`, a bad memory access…).
    Trap { detail: String },
    /// The component returned more bytes than strata accepts from one call.
    ReturnTooLarge { bytes: u64, limit: u64 },
    /// The component returned a list longer than strata accepts.
    TooMany {
        what: String,
        count: u64,
        limit: u64,
    },
    /// The component held more handles (open files, directories, streams) at once than
    /// one call may.
    Handles { limit: usize },
    /// The component could not be instantiated (a missing import, a start-up failure).
    Instantiate { detail: String },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Timeout {
                limit_ms,
                network: None,
            } => write!(
                f,
                "it ran past its deadline of {limit_ms} ms and was stopped"
            ),
            Fault::Timeout {
                limit_ms,
                network: Some(request),
            } => write!(
                f,
                "it ran past its deadline of {limit_ms} ms, waiting on the network, and was stopped ({request})"
            ),
            Fault::Memory { limit_bytes } => write!(
                f,
                "it tried to use more than its memory cap of {} MiB and was stopped",
                limit_bytes / (1024 * 1024)
            ),
            Fault::StackOverflow => {
                f.write_str("it overflowed its stack (runaway recursion) and was stopped")
            }
            Fault::Trap { detail } => write!(f, "it trapped: {detail}"),
            Fault::ReturnTooLarge { bytes, limit } => write!(
                f,
                "it returned {bytes} bytes, more than the {limit} bytes strata accepts from one call"
            ),
            Fault::TooMany { what, count, limit } => write!(
                f,
                "it returned {count} {what}, more than the {limit} strata accepts"
            ),
            Fault::Handles { limit } => write!(
                f,
                "it held more than {limit} open handles (files, directories, streams) at once and was stopped"
            ),
            Fault::Instantiate { detail } => write!(f, "it could not be started: {detail}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the user named does not exist.
    #[error("{what} does not exist")]
    NotFound { what: String, hint: String },

    /// Something the user tried to create exists already.
    #[error("{what} already exists")]
    AlreadyExists { what: String, hint: String },

    /// A request that breaks one of strata's rules.
    #[error("{what}")]
    Invalid { what: String, hint: String },

    /// A configuration that does not fit the flavor's schema or its `validate`.
    #[error("{}", config_message(subject, problems))]
    Config {
        subject: String,
        problems: Vec<FieldProblem>,
        hint: String,
    },

    /// A file that cannot be a strata flavor.
    #[error("`{path}` is not a strata flavor: {reason}")]
    NotAFlavor {
        path: String,
        reason: String,
        hint: String,
    },

    /// A flavor's call failed without the flavor saying why (trap, limit, deadline).
    #[error("flavor `{flavor}` failed during `{call}`: {fault}")]
    Sandbox {
        flavor: String,
        call: String,
        fault: Fault,
        /// The engine's own error (wasmtime's, with its backtrace of the guest), kept for
        /// a program that wants more than the classified `fault`.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A flavor's call returned an error of its own.
    #[error("{subject}: `{call}` failed: {message}")]
    Flavor {
        subject: String,
        call: String,
        message: String,
    },

    /// Something is in use right now: a lifecycle call under way on a component, or a
    /// daemon that is stopping.
    #[error("{what}")]
    Busy { what: String, hint: String },

    /// Another process holds the database.
    #[error("the store at {path} is in use by another strata process")]
    StoreLocked { path: String },

    /// A stored record is damaged.
    #[error("stored record `{key}` is damaged: {reason}")]
    Corrupt { key: String, reason: String },

    #[error("store error ({what}): {source}")]
    Store {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error("{0}")]
    Internal(String),

    /// The database behind a team server cannot be reached right now; nothing was
    /// changed, and the same request succeeds once it is back.
    #[error("{what}")]
    Unavailable { what: String, hint: String },

    /// The caller's role does not allow this request; `what` names the role it needs.
    #[error("{what}")]
    Forbidden { what: String, hint: String },

    /// An update that names the version it read (`If-Match`), when another change has
    /// been stored since.
    #[error("{what}")]
    Stale { what: String, hint: String },

    /// An error a strata daemon answered, as it worded it (`code` is the API's, such as
    /// `not_found` or `invalid_config`; `status` its HTTP status).
    #[error("{message}")]
    Remote {
        status: u16,
        code: String,
        message: String,
        hint: String,
    },
}

/// Broad classes of errors, for exit codes and HTTP statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Locked,
    Failed,
    Internal,
    Unavailable,
    Forbidden,
    Stale,
}

fn config_message(subject: &str, problems: &[FieldProblem]) -> String {
    match problems {
        [one] => format!("{subject}: {}", one.message),
        many => {
            let lines: Vec<String> = many.iter().map(|p| format!("  - {}", p.message)).collect();
            format!(
                "{subject} has {} configuration problems:\n{}",
                many.len(),
                lines.join("\n")
            )
        }
    }
}

impl Error {
    pub fn store(what: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Store {
            what: what.to_string(),
            source: source.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn not_found(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::NotFound {
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn exists(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::AlreadyExists {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// What to do about it, for a person; empty when there is nothing useful to say.
    pub fn hint(&self) -> String {
        match self {
            Error::NotFound { hint, .. }
            | Error::AlreadyExists { hint, .. }
            | Error::Invalid { hint, .. }
            | Error::Busy { hint, .. }
            | Error::Config { hint, .. }
            | Error::Unavailable { hint, .. }
            | Error::Forbidden { hint, .. }
            | Error::Stale { hint, .. }
            | Error::NotAFlavor { hint, .. }
            | Error::Remote { hint, .. } => hint.clone(),
            Error::Sandbox { fault, .. } => match fault {
                Fault::Timeout { network: Some(_), .. } => "the server answered too slowly: check that it is up and reachable, or raise the deadline with `--timeout-ms` on the component (`strata <type> update NAME --timeout-ms=MS`)".into(),
                Fault::Timeout { .. } => "the flavor may loop forever; raise its deadline with `--timeout-ms` on `flavor register` if it is only slow".into(),
                Fault::Memory { .. } => "raise the cap with `--memory-mb` on `flavor register` if the flavor needs more".into(),
                Fault::ReturnTooLarge { .. } => "the flavor should keep large data in its granted directory, not in its state".into(),
                _ => "this is a bug in the flavor: report it to its author with this message; strata and your other components are unaffected".into(),
            },
            Error::Flavor { .. } => "fix what the message names, then run the command again".into(),
            Error::StoreLocked { .. } => "another strata command is still using this home (strata waited 10 s for it); let it finish and try again".into(),
            Error::Corrupt { .. } => "strata will not guess at damaged data: restore STRATA_HOME from a backup, or move it aside to start over".into(),
            Error::Store { .. } | Error::Io { .. } | Error::Internal(_) => String::new(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::Conflict,
            Error::Invalid { .. } | Error::Config { .. } | Error::NotAFlavor { .. } => {
                ErrorKind::Invalid
            }
            Error::StoreLocked { .. } | Error::Busy { .. } => ErrorKind::Locked,
            Error::Sandbox { .. } | Error::Flavor { .. } => ErrorKind::Failed,
            Error::Corrupt { .. } | Error::Store { .. } | Error::Io { .. } | Error::Internal(_) => {
                ErrorKind::Internal
            }
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::Stale { .. } => ErrorKind::Stale,
            Error::Remote { status, code, .. } => match code.as_str() {
                "unavailable" => ErrorKind::Unavailable,
                "forbidden" | "unauthorized" => ErrorKind::Forbidden,
                "precondition_failed" => ErrorKind::Stale,
                "not_found" => ErrorKind::NotFound,
                "already_exists" => ErrorKind::Conflict,
                "locked" => ErrorKind::Locked,
                "flavor_fault" | "flavor_failed" => ErrorKind::Failed,
                _ if *status >= 500 => ErrorKind::Internal,
                _ => ErrorKind::Invalid,
            },
        }
    }
}
