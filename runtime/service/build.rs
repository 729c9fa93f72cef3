//! Embeds the built-in flavors. They are built by `make flavors` (cargo for
//! wasm32-wasip2 in `flavors/`); this script only finds the files, hashes them and
//! generates `builtins.rs`. Running cargo from here would nest cargo inside cargo.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

const FLAVORS: [(&str, &str, &str); 2] = [
    ("Orchestrator", "local", "local_orchestrator.wasm"),
    ("ArtifactStore", "local", "local_artifact_store.wasm"),
];

/// The integrations: name, then each file as (directory key, file name). `flavors` is
/// STRATA_FLAVORS_DIR (cargo's wasm32-wasip2 release output), `polyglot` is
/// STRATA_POLYGLOT_DIR (the Makefile's output for flavors in other languages).
const INTEGRATIONS: &[(&str, &[(&str, &str)])] = &[
    ("mlflow", &[("flavors", "mlflow_tracker.wasm")]),
    ("oci", &[("flavors", "oci_registry.wasm")]),
    ("s3", &[("flavors", "s3_artifact_store.wasm")]),
    ("webhook", &[("polyglot", "webhook.wasm")]),
];

fn main() {
    println!("cargo:rerun-if-env-changed=STRATA_FLAVORS_DIR");
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = env::var_os("STRATA_FLAVORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target/wasm32-wasip2/release"));
    let mut out = String::from("static BUILTINS: &[Builtin] = &[\n");
    let mut all = Sha256::new();
    for (ty, name, file) in FLAVORS {
        let path = dir.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "\n\nthe built-in flavor {} is missing ({e}).\nBuild the flavors first: `make flavors` (or `make build`), or set STRATA_FLAVORS_DIR.\n",
                path.display()
            )
        });
        let sha = hex::encode(Sha256::digest(&bytes));
        all.update(sha.as_bytes());
        let abs = fs::canonicalize(&path).expect("the file was just read");
        writeln!(
            out,
            "    Builtin {{ component_type: ComponentType::{ty}, name: {name:?}, wasm: include_bytes!({:?}), sha256: {sha:?} }},",
            abs.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    println!("cargo:rerun-if-env-changed=STRATA_POLYGLOT_DIR");
    let polyglot = env::var_os("STRATA_POLYGLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target/polyglot"));
    out.push_str("static INTEGRATIONS: &[BuiltinIntegration] = &[\n");
    for (name, files) in INTEGRATIONS {
        writeln!(out, "    BuiltinIntegration {{ name: {name:?}, files: &[")
            .expect("writing to a String");
        for (at, file) in *files {
            let path = if *at == "polyglot" {
                polyglot.join(file)
            } else {
                dir.join(file)
            };
            println!("cargo:rerun-if-changed={}", path.display());
            let abs = fs::canonicalize(&path).unwrap_or_else(|e| {
                panic!(
                    "\n\nthe flavor {} of the built-in integration `{name}` is missing ({e}).\nBuild it first: `make flavors` (or `make build`).\n",
                    path.display()
                )
            });
            writeln!(
                out,
                "        ({file:?}, include_bytes!({:?})),",
                abs.display().to_string()
            )
            .expect("writing to a String");
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n");
    writeln!(
        out,
        "static DIGEST: &str = {:?};",
        hex::encode(all.finalize())
    )
    .expect("writing to a String");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtins.rs");
    fs::write(dest, out).expect("writing builtins.rs");
}
