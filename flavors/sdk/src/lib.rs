//! Writing a strata flavor in Rust: implement [`Flavor`], call [`export!`], build for
//! `wasm32-wasip2`.
//!
//! A flavor is a WebAssembly component implementing the WIT package `strata:flavor`
//! (strata's `wit/`): it describes itself, checks configurations, and provisions,
//! resumes, suspends and deprovisions components of its type. This crate holds the
//! generated bindings of the `flavor` world ([`bindings`]) and turns them into a trait
//! with typed configuration and state, so a flavor is its own logic and nothing else:
//!
//! ```
//! use std::path::PathBuf;
//! use serde::{Deserialize, Serialize};
//! use strata_flavor_sdk::{Call, ComponentType, Config, Field, Flavor, Info, Problems, Result, info};
//!
//! struct Greeter;
//!
//! /// The configuration, as the code uses it.
//! struct Settings { greeting: String, file: PathBuf }
//!
//! /// What strata keeps between calls.
//! #[derive(Default, Serialize, Deserialize)]
//! struct Counts { #[serde(default)] provisioned: u32 }
//!
//! impl Flavor for Greeter {
//!     type Settings = Settings;
//!     type State = Counts;
//!
//!     fn info() -> Info {
//!         Info::new("greeter", ComponentType::Annotator)
//!             .version(env!("CARGO_PKG_VERSION"))
//!             .description("Writes a greeting into a file.")
//!             .field(Field::text("greeting", "What the file says.").default("hello"))
//!             .field(Field::path("path", "The directory the file goes in.").required())
//!     }
//!
//!     fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
//!         let greeting = config.get("greeting").unwrap_or("hello");
//!         if greeting.trim().is_empty() {
//!             problems.field("greeting", "greeting is empty: say something, like `--greeting=hi`");
//!         }
//!         let dir = problems.check("path", config.require_path("path"));
//!         Some(Settings { greeting: greeting.to_string(), file: dir?.join("greeting.txt") })
//!     }
//!
//!     fn provision(call: &mut Call<'_, Self>) -> Result<()> {
//!         std::fs::write(&call.settings.file, &call.settings.greeting)?;
//!         call.state.provisioned += 1;
//!         info!("wrote {}", call.settings.file.display());
//!         Ok(())
//!     }
//!
//!     fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
//!         match std::fs::remove_file(&call.settings.file) {
//!             Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
//!             _ => Ok(()),
//!         }
//!     }
//! }
//!
//! strata_flavor_sdk::export!(Greeter);
//! # fn main() {}
//! ```
//!
//! `resume`, `suspend`, `status` and `prepare-pipeline-deployment` have defaults
//! ([`Flavor`] says what they do); `validate` is [`Flavor::settings`]. The pieces:
//! - [`Flavor`] and [`Call`]: the lifecycle, the state decoded and encoded around each
//!   call, the [`Phase`] reached;
//! - [`Info`] and [`Field`]: what `describe` says;
//! - [`Config`]: typed access to the fields (`require`, `int_or`, `bool_or`,
//!   `require_path`, …), each error naming the field; [`Problems`] collects every problem;
//! - [`Error`] (with [`ResultExt`]): a message and a hint, made by `?` from an
//!   `io::Error` or a `String`;
//! - [`log`]: [`info!`], [`warn!`], … to strata's log, kept on the thread in native
//!   unit tests;
//! - [`State`]: the JSON encoding of a state, and [`resolve_inside`]: a user's relative
//!   path kept inside a granted directory.
//! - [`http`]: a blocking HTTP client ([`http::Request`], [`http::get`]) over
//!   `wasi:http`, reaching the origins the component's `url` fields grant.
//!
//! The crate builds and tests on any target: only calls into the host need WebAssembly,
//! [`log`] keeps its lines on the thread elsewhere, and [`http::answer_with`] answers
//! the requests, so a flavor's unit tests run with a plain
//! `cargo test --target <your machine's target>`.
//!
//! Flavors of the `artifact-store-flavor` and `orchestrator-flavor` worlds export a
//! second interface; they generate their own bindings on top of these, as
//! [`impl_lifecycle!`] shows.
//!
//! What this crate is not: a client of strata (that is the `strata` crate), or a way
//! around the sandbox. A flavor sees only the directories of its `path` fields, reaches
//! over the network only the origins its configuration grants (its `url` fields, its
//! service connector, the `origins` the user accepted), and has no environment, sockets
//! or standard streams.

// The generated code names this crate by its path, from here and from flavor crates.
extern crate self as strata_flavor_sdk;

pub mod bindings;
mod config;
pub mod endpoint;
mod error;
mod export;
mod flavor;
pub mod http;
mod info;
pub mod log;
mod paths;
mod problems;
mod state;

pub use bindings::strata::flavor::types::{ComponentType, Context, FieldKind, Level, Status};
pub use config::Config;
pub use error::{Error, Result, ResultExt};
pub use flavor::{Call, Flavor, Phase, lifecycle};
pub use info::{Field, Info, type_name};
pub use paths::resolve_inside;
pub use problems::{Problem, Problems};
pub use state::State;

/// What most flavors use, in one line: `use strata_flavor_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Call, ComponentType, Config, Error, Field, Flavor, Info, Phase, Problems, Result,
        ResultExt, Status, debug, error, info, warn,
    };
}

/// The serde_json the SDK uses ([`http::Request::json`] takes its `Value`), so a flavor
/// can write `strata_flavor_sdk::serde_json::json!({ … })` without a dependency of its own.
pub use serde_json;

/// The wit-bindgen runtime the generated bindings call (`runtime_path`), so a flavor
/// crate needs no wit-bindgen dependency of its own.
#[doc(hidden)]
pub use wit_bindgen::rt;

/// wit-bindgen itself, for a flavor that generates the bindings of another world
/// (see [`impl_lifecycle!`]).
#[doc(hidden)]
pub use wit_bindgen;
