//! What strata manages, independent of how it is stored or run: component types, flavor
//! descriptions and their configuration schemas, components, stacks, and the rules that
//! tie them together. Nothing here touches the disk or a sandbox.

pub mod calls;
mod config;
pub mod error;
pub mod fsutil;
pub mod home;
pub mod origin;
pub mod text;
mod types;

/// The paths these files were written with, from when they were one crate.
pub(crate) use crate as model;

pub use config::{
    FieldProblem, Protected, check_config, check_grantable, effective_config, normalize_local_path,
    parse_assignments, resolve_existing, scheme_of, secret_reference,
};
pub use types::*;
