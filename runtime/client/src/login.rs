//! `strata login`: which team server the CLI talks to, and with which token. Kept in
//! `login.json` in the user's config directory (`$STRATA_CONFIG_DIR`, else
//! `~/.config/strata`), readable by the user only. While it exists, every command goes to
//! that server, but for one given a home (`--home` or `STRATA_HOME`), which stays local.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Login {
    /// `http://HOST:PORT` of the server.
    pub url: String,
    /// `strata_ID_SECRET`.
    pub token: String,
    /// Who the token belongs to, as the server said at login.
    pub user: String,
    /// For an https:// server: the PEM certificate (the server's, or its issuer's) to
    /// trust instead of the public authorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// Where the login is kept.
pub fn file() -> Result<PathBuf> {
    let dir = match std::env::var_os("STRATA_CONFIG_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => dirs::config_dir()
            .map(|d| d.join("strata"))
            .ok_or_else(|| {
                Error::invalid(
                    "cannot find a config directory for strata's login",
                    "set STRATA_CONFIG_DIR to a directory strata may use",
                )
            })?,
    };
    Ok(dir.join("login.json"))
}

/// The login in force, if any. A file that cannot be read is an error, not a silent
/// switch to the local home.
pub fn read() -> Result<Option<Login>> {
    let path = file()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::invalid(
            format!("{} is not a strata login: {e}", path.display()),
            "log in again with `strata login URL`, or remove it with `strata logout`",
        )
    })
}

/// Keeps `login` (mode 0600, written whole).
pub fn write(login: &Login) -> Result<PathBuf> {
    let path = file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let text = serde_json::to_string_pretty(login).expect("invariant: serializes");
    crate::fsutil::write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// Forgets the login; `false` when there was none.
pub fn remove() -> Result<bool> {
    let path = file()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Checks a server URL as `strata login` takes it.
pub fn check_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let ok = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if ok {
        Ok(url.to_string())
    } else {
        Err(Error::invalid(
            format!("`{url}` is not a strata server's address"),
            "give it as http://HOST:PORT or https://HOST:PORT, as `strata server start` printed it",
        ))
    }
}
