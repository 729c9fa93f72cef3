//! The error a lifecycle call returns: what failed, and what the user can do about it.

use std::fmt;
use std::io;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An expected failure of a lifecycle call, for the person running strata: a missing
/// directory, a file that cannot be written, a configuration that no longer fits.
///
/// strata shows it as one line, the message followed by the hint:
/// `could not create /data/alerts.log: Permission denied; check that …`. Say what failed
/// in the message and what to do in the hint. A bug in the flavor is not an `Error`: a
/// panic traps, and strata reports a trap as a bug in the flavor.
///
/// `?` turns an [`io::Error`], a `String` or a `&str` into one, so lifecycle code reads
/// like any Rust:
///
/// ```
/// use strata_flavor_sdk::{Error, ResultExt};
///
/// fn write_marker(path: &std::path::Path) -> Result<(), Error> {
///     std::fs::write(path, "ok")
///         .context(format!("could not create {}", path.display()))?;
///     Ok(())
/// }
/// let err = write_marker(std::path::Path::new("/no/such/dir/marker")).unwrap_err();
/// assert!(err.to_string().starts_with("could not create /no/such/dir/marker: "));
/// assert!(err.hint().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    hint: Option<String>,
}

impl Error {
    /// An error saying `message`, with no hint yet.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error, with `hint` saying what to do (replacing any earlier hint).
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same error, with `what` in front of its message: `what: message`.
    #[must_use]
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it, if the error says.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hint {
            Some(hint) => write!(f, "{}; {hint}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(message)
    }
}

/// The error's text, with a hint for the kinds a user can act on. The text does not name
/// the file: add it with [`ResultExt::context`].
impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        let hint = match err.kind() {
            io::ErrorKind::NotFound => Some(
                "check that it exists; a flavor sees only the directories of its `path` fields",
            ),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Some(
                "check that you may write there; a flavor sees only the directories of its \
                 `path` fields",
            ),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                Some("free some space on that disk, then run the command again")
            }
            _ => None,
        };
        let error = Error::new(err.to_string());
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

impl From<Error> for String {
    fn from(err: Error) -> Self {
        err.to_string()
    }
}

/// Adds what was being done, or a hint, to the error of any `Result` whose error becomes
/// an [`Error`] (an [`io::Error`], a `String`, an `Error`).
pub trait ResultExt<T> {
    /// Puts `what` in front of the error's message: `could not open /data/x: No such file`.
    ///
    /// # Errors
    /// The error of `self`, if it is one.
    fn context(self, what: impl fmt::Display) -> Result<T>;

    /// Gives the error a hint saying what to do.
    ///
    /// # Errors
    /// The error of `self`, if it is one.
    fn hint(self, hint: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|err| err.into().context(what))
    }

    fn hint(self, hint: impl Into<String>) -> Result<T> {
        self.map_err(|err| err.into().with_hint(hint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_the_hint_after_the_message() {
        assert_eq!(Error::new("gone").to_string(), "gone");
        let err = Error::new("gone").with_hint("run `up`");
        assert_eq!(err.to_string(), "gone; run `up`");
        assert_eq!(err.message(), "gone");
        assert_eq!(err.hint(), Some("run `up`"));
        assert_eq!(String::from(err), "gone; run `up`");
    }

    #[test]
    fn io_errors_keep_their_text_and_get_a_hint_by_kind() {
        let err = Error::from(io::Error::new(io::ErrorKind::NotFound, "no such file"));
        assert_eq!(err.message(), "no such file");
        assert!(err.hint().unwrap().contains("`path` fields"), "{err}");
        let other = Error::from(io::Error::other("odd"));
        assert_eq!(other.hint(), None);
    }

    #[test]
    fn context_and_hint_apply_to_any_convertible_error() {
        let failed: std::result::Result<(), io::Error> = Err(io::Error::other("disk on fire"));
        let err = failed.context("could not write /data/x").unwrap_err();
        assert_eq!(err.to_string(), "could not write /data/x: disk on fire");
        let failed: std::result::Result<(), String> = Err("bad".into());
        let err = failed.hint("try again").unwrap_err();
        assert_eq!(err.to_string(), "bad; try again");
        let fine: std::result::Result<u8, String> = Ok(1);
        assert_eq!(fine.context("never shown"), Ok(1));
    }
}
