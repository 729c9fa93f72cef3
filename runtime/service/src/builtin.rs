//! The flavors compiled into the `strata` binary: a `local` orchestrator and a `local`
//! artifact store, registered in every home, and the integrations (`s3`, `mlflow`, `oci`,
//! `webhook`), installed on demand. They are built from `flavors/` for wasm32-wasip2 (the
//! JavaScript one with componentize-js) and embedded by `build.rs`, which only reads the
//! files the Makefile built; it never runs cargo.

use crate::model::ComponentType;

/// One embedded flavor.
pub struct Builtin {
    pub component_type: ComponentType,
    pub name: &'static str,
    pub wasm: &'static [u8],
    pub sha256: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// One integration built into strata: flavor files installed together by
/// `strata integration install NAME`, not registered until then.
pub struct BuiltinIntegration {
    pub name: &'static str,
    /// Each file's name and bytes.
    pub files: &'static [(&'static str, &'static [u8])],
}

/// Every integration built into strata.
pub fn integrations() -> &'static [BuiltinIntegration] {
    INTEGRATIONS
}

/// Every built-in flavor.
pub fn all() -> &'static [Builtin] {
    BUILTINS
}

/// Identifies this set of built-in flavors: when it changes (a new strata), they are
/// registered again on the next start.
pub fn digest() -> &'static str {
    DIGEST
}
