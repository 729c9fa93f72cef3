//! Helpers every Rust flavor of strata uses, whatever its component type.
//!
//! A flavor is a WebAssembly component built against the `strata:flavor` WIT package. Its
//! generated bindings hand it the component's configuration as `key=value` pairs, the
//! state it returned last time as raw bytes, and paths chosen by the user. This crate
//! holds the code that turns those into checked values, with error messages meant for the
//! person running strata: [`Config`] reads configuration fields, [`State`] keeps a flavor's
//! state as JSON, [`resolve_inside`] maps a user's relative path to a location that cannot
//! leave a granted directory, and [`Problems`] collects every validation problem at once.
//!
//! The crate has no WebAssembly bindings of its own (each flavor generates its own from
//! the WIT), so it builds and tests on any target.

mod config;
mod paths;
mod problems;
mod state;

pub use config::Config;
pub use paths::resolve_inside;
pub use problems::{Problem, Problems};
pub use state::State;
