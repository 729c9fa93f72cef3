//! strata's end-to-end suite: the real `strata` binary, real `.wasm` flavors built from
//! `flavors/` by `make flavors`, and a fresh `STRATA_HOME` in a temp dir per test.
//!
//! - `walkthrough`: every command the seeds show, as `strata …`.
//! - `rules`: each bad input gets `error: …` + `hint: …`, exit 1, and changes nothing.
//! - `hostile`: flavors that trap, loop, eat memory, lie about themselves or try to
//!   escape their grants end in a clear error in time, and strata carries on.
//! - `holes`: the classes of attack an audit found (defaults as grants, symlinked
//!   grants, secrets echoed back, floods of empty elements, descriptors, lying schedules).
//! - `edits`: update, remove-attribute, rename, copy of components and stacks.
//! - `lifecycle`: phases, state handed back, interrupted calls, pipeline runs, secrets.
//! - `crash`: SIGKILL at random points loses nothing acknowledged; backup / restore.
//! - `transfer`: stack export / import between homes, secrets from files, renames.
//! - `flavor_new`: projects from each `flavor new` template, built and passed through
//!   `flavor test` (in-process pass only: neither command uses a home or a daemon).
//! - `terminal`: `-i` prompts driven through a real pseudo-terminal; colour rules.
//! - `golden`: snapshots (insta) of every `--help` and of the errors of bad inputs.
//! - `daemon`: the CLI through a real daemon on loopback (same output as in-process),
//!   the REST API (auth, Host check, error codes, upload, operations), 100 concurrent
//!   clients, and SIGTERM during a slow `up`.
//!
//! - `runs`: pipelines that run: steps, artifacts through the store, the cache, failures,
//!   timeouts, Ctrl-C, `pipeline cancel` through the daemon, kill -9 in the middle.
//! - `services`: the built-in integrations (`s3`, `mlflow`, `oci`, `webhook`) against
//!   the real servers (`servers`: s3s-fs, MLflow, docker-registry, a webhook), and the
//!   README's "A stack of real services" as written.
//!
//! - `team`: the team server over a real MariaDB: users, tokens, roles and stack grants,
//!   two nodes on one database (no lost update, one provision), the audit log, a
//!   database that goes away and comes back.
//!
//! - `dashboard`: the dashboard in a real Chromium (Debian's, over chromedriver: see
//!   `browser`): each page as a person sees it, `up` pressed, a failed step's log, a
//!   phone's width, dark; and its rules over HTTP (policy headers, one-time links).
//!
//! `make test` runs the suite twice: in-process, then with `STRATA_TEST_DAEMON=1`, where
//! every home is served by a daemon and every command goes through it.

mod browser;
mod crash;
mod daemon;
mod dashboard;
mod edits;
mod flavor_new;
mod golden;
mod holes;
mod hostile;
mod lifecycle;
mod net;
mod polyglot;
mod rules;
mod runs;
mod servers;
mod services;
mod support;
mod team;
mod terminal;
mod transfer;
mod walkthrough;
