//! strata's end-to-end suite: the real `strata` binary, real `.wasm` flavors built from
//! `flavors/` by `make flavors`, and a fresh `STRATA_HOME` in a temp dir per test.
//!
//! - `walkthrough`: every command the seeds show, as `strata …`.
//! - `rules`: each bad input gets `error: …` + `hint: …`, exit 1, and changes nothing.
//! - `hostile`: flavors that trap, loop, eat memory, lie about themselves or try to
//!   escape their grants end in a clear error in time, and strata carries on.
//! - `edits`: update, remove-attribute, rename, copy of components and stacks.
//! - `lifecycle`: phases, state handed back, interrupted calls, pipeline runs, secrets.
//! - `crash`: SIGKILL at random points loses nothing acknowledged; backup / restore.
//! - `transfer`: stack export / import between homes, secrets from files, renames.
//! - `terminal`: `-i` prompts driven through a real pseudo-terminal.

mod crash;
mod edits;
mod hostile;
mod lifecycle;
mod rules;
mod support;
mod terminal;
mod transfer;
mod walkthrough;
