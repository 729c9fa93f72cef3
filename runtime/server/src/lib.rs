//! `strata daemon`: one long-lived process that holds a home's store and serves it over
//! HTTP on loopback, to the CLI (which goes through it by itself when it runs) and to
//! programs (the REST API under `/api/v1`, described by `openapi.json`).
//!
//! sled lets one process open a database, so while a daemon runs it is the only way in.
//! It writes `daemon.json` (address, pid, bearer token; mode 0600) into the home once it
//! listens, and removes it when it stops.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, home};
#[allow(unused_imports)]
pub(crate) use {
    crate as daemon, strata_api as api, strata_service as service, strata_store as store,
};

pub mod access;
pub mod connections;
pub mod dashboard;
pub mod routes;
pub mod server;

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::home::Home;

pub use strata_api::discovery::{DaemonFile, DaemonLock, alive, proc_start};

/// The last `n` lines of the log of a daemon started in the background.
pub fn read_log(home: &Home, n: usize) -> Result<Vec<String>> {
    let log = log_file(home);
    let text = std::fs::read_to_string(&log).map_err(|e| {
        Error::not_found(
            format!("the daemon log {} ({e})", log.display()),
            "it is written by `strata daemon start`; a daemon started with --foreground logs to its terminal",
        )
    })?;
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(n);
    Ok(all[from..].iter().map(|l| l.to_string()).collect())
}

/// Where a daemon started in the background writes its log.
pub fn log_file(home: &Home) -> PathBuf {
    home.root().join("daemon.log")
}
