//! strata: ZenML's stack model (stacks of components, each an instance of a flavor,
//! with a provision / resume / suspend / deprovision lifecycle), where every flavor is a
//! WebAssembly component run in a wasmtime sandbox.
//!
//! This crate is both the `strata` command and a library. The library's entry point is
//! [`Client`], which opens a home the way the CLI does:
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

pub mod api;
pub mod builtin;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod error;
pub mod fsutil;
pub mod home;
pub mod model;
pub mod sandbox;
pub mod scaffold;
pub mod service;
pub mod store;

pub use client::Client;
pub use error::{Error, Result};
