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

fn main() {
    println!("cargo:rerun-if-env-changed=STRATA_FLAVORS_DIR");
    relr();
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = env::var_os("STRATA_FLAVORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/wasm32-wasip2/release"));
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
    writeln!(
        out,
        "static DIGEST: &str = {:?};",
        hex::encode(all.finalize())
    )
    .expect("writing to a String");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtins.rs");
    fs::write(dest, out).expect("writing builtins.rs");
}

/// Links `strata` with packed relative relocations (DT_RELR) where the linker and the C
/// library have them (GNU ld ≥ 2.38, glibc ≥ 2.36): the loader's work at every start
/// drops from 75,000 relocation entries to a bitmap (about 0.4 ms of a command's 2.9 ms
/// start-up here). Elsewhere the binary is linked as before: a binary with DT_RELR does not
/// start on an older glibc.
fn relr() {
    let linker_has_it = std::process::Command::new("ld")
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("pack-relative-relocs"));
    let glibc_has_it = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let version = text.trim().strip_prefix("glibc ")?.to_string();
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .is_some_and(|v| v >= (2, 36));
    let target_linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linker_has_it && glibc_has_it && target_linux_gnu {
        println!("cargo:rustc-link-arg-bin=strata=-Wl,-z,pack-relative-relocs");
    }
}
