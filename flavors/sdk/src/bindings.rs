//! The generated bindings of the `strata:flavor/flavor` world.
//!
//! This crate owns the one `wit_bindgen::generate!` a flavor of that world needs, so a
//! flavor crate has no bindings (and no wit-bindgen dependency) of its own: it implements
//! [`Flavor`](crate::Flavor) and calls [`export!`](crate::export). The records and enums
//! of the contract live in [`strata::flavor::types`] (re-exported at the crate root where
//! a flavor needs them), the host's `log` in [`strata::flavor::host`], and the trait
//! strata calls in [`exports::strata::flavor::lifecycle`], implemented for every
//! [`Flavor`](crate::Flavor).
//!
//! The world also imports `wasi:http/outgoing-handler@0.2.12`, the network: its bindings,
//! and those of the interfaces it uses (`wasi:http/types`, `wasi:io/{poll,error,streams}`,
//! `wasi:clocks/monotonic-clock`), are generated here too, under [`wasi`]. Most flavors
//! use them through [`http`](crate::http), a blocking client written over them.
//!
//! The WIT is read from `../../wit`, relative to this crate's directory: the repository's
//! `wit/` when this crate is `flavors/sdk`, and the project's `wit/` when `strata flavor
//! new` vendors it into `vendor/strata-flavor-sdk`. The `wasi:*` packages come from
//! `wit/deps/`.
//!
//! A flavor of the `artifact-store-flavor` or `orchestrator-flavor` world, which exports
//! a second interface, generates its own bindings and maps the shared interfaces (these
//! of strata, and the `wasi:*` ones above) onto these;
//! [`impl_lifecycle!`](crate::impl_lifecycle) shows how.

wit_bindgen::generate!({
    path: "../../wit",
    world: "strata:flavor/flavor",
    // The `wasi:*` interfaces the world imports, from `wit/deps/`, are generated here
    // too, so a flavor maps them onto these rather than generating its own.
    generate_all,
    // `export!` is called from the flavor's crate, not this one.
    pub_export_macro: true,
    export_macro_name: "export_flavor_world",
    default_bindings_module: "strata_flavor_sdk::bindings",
    // The runtime the generated code calls, through this crate: a flavor needs no
    // wit-bindgen dependency of its own.
    runtime_path: "strata_flavor_sdk::rt",
});
