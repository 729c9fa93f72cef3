//! `strata flavor new`: a flavor project that builds out of the box.
//!
//! Each template (Rust, Python, JavaScript) is a working flavor, so `make test`
//! (`strata flavor test`) passes as made, and its `make` installs the language's
//! toolchain from the registries when it is missing. Most types share one template of
//! the `flavor` world: it keeps `running` in its state and reports it from `status`
//! (Rust and Python also provision a marker file inside their granted directory). The
//! three types whose worlds export a second interface have their own: a webhook alerter
//! (`alerter-flavor`), whose `post` sends a message and whose `resume` and `suspend`
//! announce the component, each to the URL of its `webhook` field over `wasi:http` (the
//! SDK's `http` in Rust, componentize-py's `poll_loop` in Python, `fetch` in
//! JavaScript); an artifact store that keeps its artifacts in its granted directory (Rust
//! and Python; componentize-js has no file system); and an orchestrator that schedules a
//! run's steps in dependency order.
//!
//! The project gets a copy of this strata's WIT, so it builds against the contract the
//! strata that made it implements. A Rust project also gets a copy of strata's Rust SDK
//! (`flavors/sdk`, in `vendor/strata-flavor-sdk`, reading that WIT) and a Cargo.lock with
//! the versions `flavors/` is built and tested with, so `make` builds `--locked`, from
//! the local cargo cache when it holds them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::ComponentType;

/// The contract, as this binary implements it, and the `wasi:*` packages it imports
/// (`deps/`, where wit-bindgen, componentize-py and componentize-js look for them). The
/// frozen copy of an older contract (`wit/0.1.0/`) is strata's own affair, not copied.
const WIT: [(&str, &str); 15] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("lifecycle.wit", include_str!("../../../wit/lifecycle.wit")),
    ("alerter.wit", include_str!("../../../wit/alerter.wit")),
    (
        "experiment-tracker.wit",
        include_str!("../../../wit/experiment-tracker.wit"),
    ),
    (
        "artifact-store.wit",
        include_str!("../../../wit/artifact-store.wit"),
    ),
    (
        "orchestrator.wit",
        include_str!("../../../wit/orchestrator.wit"),
    ),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

/// `(path in the project, text)` of each template file named, read from `cli/templates`.
macro_rules! templates {
    ($($path:literal => $file:literal),* $(,)?) => {
        [$(($path, include_str!(concat!("cli/templates/", $file)))),*]
    };
}

/// The files of every Rust project.
const RUST: [(&str, &str); 3] = templates!(
    "Cargo.toml" => "rust/Cargo.toml.tmpl",
    "Makefile" => "rust/Makefile.tmpl",
    ".gitignore" => "rust/gitignore.tmpl",
);

/// The files of a Rust flavor of the `flavor` world, for most types.
const RUST_LIFECYCLE: [(&str, &str); 2] = templates!(
    "README.md" => "rust/README.md.tmpl",
    "src/lib.rs" => "rust/lib.rs.tmpl",
);

/// A webhook alerter: `post`, `resume` and `suspend` post to the URL of its `webhook` field.
const RUST_ALERTER: [(&str, &str); 2] = templates!(
    "README.md" => "rust/alerter/README.md.tmpl",
    "src/lib.rs" => "rust/alerter/lib.rs.tmpl",
);

const RUST_ARTIFACT_STORE: [(&str, &str); 3] = templates!(
    "README.md" => "rust/artifact-store/README.md.tmpl",
    "src/lib.rs" => "rust/artifact-store/lib.rs.tmpl",
    "src/tests.rs" => "rust/artifact-store/tests.rs.tmpl",
);

const RUST_ORCHESTRATOR: [(&str, &str); 3] = templates!(
    "README.md" => "rust/orchestrator/README.md.tmpl",
    "src/lib.rs" => "rust/orchestrator/lib.rs.tmpl",
    "src/tests.rs" => "rust/orchestrator/tests.rs.tmpl",
);

/// Where a Rust project keeps its copy of the SDK.
const SDK_DIR: &str = "vendor/strata-flavor-sdk";

/// The manifest of the vendored SDK: its own, as the one in `flavors/sdk` inherits from
/// the `flavors/` workspace.
const SDK_MANIFEST: &str = include_str!("cli/templates/rust/sdk-Cargo.toml.tmpl");

/// `(path in the SDK, text)` of each file named, read from `flavors/sdk/src`.
macro_rules! sdk_sources {
    ($($file:literal),* $(,)?) => {
        [$((concat!("src/", $file), include_str!(concat!("../../../flavors/sdk/src/", $file)))),*]
    };
}

/// The sources of strata's Rust flavor SDK, as this binary was built with them.
const SDK_SOURCES: [(&str, &str); 15] = sdk_sources!(
    "lib.rs",
    "bindings.rs",
    "endpoint.rs",
    "config.rs",
    "error.rs",
    "export.rs",
    "flavor.rs",
    "http.rs",
    "http/error.rs",
    "http/url.rs",
    "info.rs",
    "log.rs",
    "paths.rs",
    "problems.rs",
    "state.rs",
);

/// The Cargo.lock of a Rust project, without the project's own entry (its name is the
/// project's): every crate the SDK and the template need, at the versions of
/// `flavors/Cargo.lock`.
const RUST_LOCK: &str = include_str!("cli/templates/rust/Cargo.lock.tmpl");

/// The files of every Python project.
const PYTHON: [(&str, &str); 3] = templates!(
    "Makefile" => "python/Makefile.tmpl",
    "requirements.txt" => "python/requirements.txt.tmpl",
    ".gitignore" => "python/gitignore.tmpl",
);

const PYTHON_LIFECYCLE: [(&str, &str); 2] = templates!(
    "README.md" => "python/README.md.tmpl",
    "app.py" => "python/app.py.tmpl",
);

/// A webhook alerter: `post`, `resume` and `suspend` post to the URL of its `webhook` field.
const PYTHON_ALERTER: [(&str, &str); 2] = templates!(
    "README.md" => "python/alerter/README.md.tmpl",
    "app.py" => "python/alerter/app.py.tmpl",
);

const PYTHON_ARTIFACT_STORE: [(&str, &str); 2] = templates!(
    "README.md" => "python/artifact-store/README.md.tmpl",
    "app.py" => "python/artifact-store/app.py.tmpl",
);

const PYTHON_ORCHESTRATOR: [(&str, &str); 2] = templates!(
    "README.md" => "python/orchestrator/README.md.tmpl",
    "app.py" => "python/orchestrator/app.py.tmpl",
);

/// The files of every JavaScript project. The Makefile is the world's: an alerter's
/// enables componentize-js's `http` feature (`fetch`).
const JS: [(&str, &str); 2] = templates!(
    "package.json" => "js/package.json.tmpl",
    ".gitignore" => "js/gitignore.tmpl",
);

const JS_LIFECYCLE: [(&str, &str); 3] = templates!(
    "Makefile" => "js/Makefile.tmpl",
    "README.md" => "js/README.md.tmpl",
    "flavor.js" => "js/flavor.js.tmpl",
);

/// A webhook alerter: `post`, `resume` and `suspend` post to the URL of its `webhook` field.
const JS_ALERTER: [(&str, &str); 3] = templates!(
    "Makefile" => "js/alerter/Makefile.tmpl",
    "README.md" => "js/alerter/README.md.tmpl",
    "flavor.js" => "js/alerter/flavor.js.tmpl",
);

const JS_ORCHESTRATOR: [(&str, &str); 3] = templates!(
    "Makefile" => "js/Makefile.tmpl",
    "README.md" => "js/orchestrator/README.md.tmpl",
    "flavor.js" => "js/orchestrator/flavor.js.tmpl",
);

/// The WIT world a flavor of type `t` is built against.
fn world(t: ComponentType) -> &'static str {
    match t {
        ComponentType::ArtifactStore => "artifact-store-flavor",
        ComponentType::Orchestrator => "orchestrator-flavor",
        ComponentType::Alerter => "alerter-flavor",
        _ => "flavor",
    }
}

/// The template files of a project in `lang` for type `t`: those of every project in
/// that language, then those of its world.
fn template(lang: &str, t: ComponentType) -> Result<[&'static [(&'static str, &'static str)]; 2]> {
    use ComponentType::{Alerter, ArtifactStore, Orchestrator};
    Ok(match (lang, t) {
        ("rust", Alerter) => [&RUST, &RUST_ALERTER],
        ("rust", ArtifactStore) => [&RUST, &RUST_ARTIFACT_STORE],
        ("rust", Orchestrator) => [&RUST, &RUST_ORCHESTRATOR],
        ("rust", _) => [&RUST, &RUST_LIFECYCLE],
        ("python" | "py", Alerter) => [&PYTHON, &PYTHON_ALERTER],
        ("python" | "py", ArtifactStore) => [&PYTHON, &PYTHON_ARTIFACT_STORE],
        ("python" | "py", Orchestrator) => [&PYTHON, &PYTHON_ORCHESTRATOR],
        ("python" | "py", _) => [&PYTHON, &PYTHON_LIFECYCLE],
        ("js" | "javascript", ArtifactStore) => {
            return Err(Error::invalid(
                "there is no JavaScript template for artifact store flavors: an artifact \
                 store keeps files in its granted directory, and componentize-js has no file \
                 system API (nor can it keep artifacts in its state: the artifact-store calls \
                 return none)",
                "use `--lang rust` or `--lang python`, whose artifact stores keep their \
                 artifacts in the directory of their `path` field",
            ));
        }
        ("js" | "javascript", Alerter) => [&JS, &JS_ALERTER],
        ("js" | "javascript", Orchestrator) => [&JS, &JS_ORCHESTRATOR],
        ("js" | "javascript", _) => [&JS, &JS_LIFECYCLE],
        _ => {
            return Err(Error::invalid(
                format!(
                    "there is no `{lang}` template: `strata flavor new` makes Rust, Python and JavaScript flavors"
                ),
                "use `--lang rust`, `--lang python` or `--lang js`; docs/WRITING-A-FLAVOR.md says what other languages need",
            ));
        }
    })
}

/// Writes a new flavor project named `name` for type `t` in `dir` (default: `./NAME`),
/// and returns the directory.
pub fn new_flavor(name: &str, t: ComponentType, lang: &str, dir: Option<&Path>) -> Result<PathBuf> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(Error::invalid(
            format!("`{name}` is not a valid flavor name"),
            "use lower case letters, digits, `-` and `_`, starting with a letter, like `my-alerter`",
        ));
    }
    let template = template(lang, t)?;
    if lang == "rust" && locked_packages(RUST_LOCK).any(|p| p == name) {
        return Err(Error::invalid(
            format!("`{name}` is the name of a crate every Rust flavor depends on"),
            "choose another name, like `my-alerter`",
        ));
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::exists(
            format!("directory `{}`, not empty", dir.display()),
            "give an empty or new directory with `--dir`",
        ));
    }
    let variant: String = t
        .as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect();
    // The Rust type of the flavor: `my-alerter` is `MyAlerterFlavor`, a name that cannot
    // be one of the template's or the SDK's (`Settings`, `Flavor`, `Config`, …).
    let camel: String = name
        .split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .chain(["Flavor".to_string()])
        .collect();
    let crate_file = name.replace('-', "_");
    let py_type = t.as_str().replace('-', "_").to_uppercase();
    let label = t.label();
    let vars: [(&str, &str); 10] = [
        ("name", name),
        ("struct", &camel),
        ("crate", name),
        ("crate_file", &crate_file),
        ("file", &crate_file),
        ("py_type", &py_type),
        ("variant", &variant),
        ("type", t.as_str()),
        ("world", world(t)),
        ("label", &label),
    ];
    let mut files: Vec<(PathBuf, String)> = template
        .iter()
        .flat_map(|files| files.iter())
        .map(|(p, text)| Ok((PathBuf::from(p), fill(p, text, &vars)?)))
        .collect::<Result<_>>()?;
    files.extend(
        WIT.iter()
            .map(|(p, text)| (Path::new("wit").join(p), text.to_string())),
    );
    if lang == "rust" {
        let sdk = [("Cargo.toml", SDK_MANIFEST)]
            .into_iter()
            .chain(SDK_SOURCES);
        files.extend(sdk.map(|(p, text)| (Path::new(SDK_DIR).join(p), text.to_string())));
        files.push((PathBuf::from("Cargo.lock"), rust_lock(name)));
    }
    if matches!(lang, "js" | "javascript") {
        files.push((PathBuf::from("package-lock.json"), js_lock(name)));
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(dir)
}

/// `text`, the template of the project's file `path`, with each `{{ var }}` replaced by
/// its value in `vars`. The templates are minijinja's (Jinja2's syntax) with no escaping
/// and every line kept, the last line break too; a variable not in `vars` is an error
/// (strict undefined), not an empty string or a `{{…}}` left in the output. A template
/// that needs `{{`, `{%` or `{#` as text (a Rust format string, say) puts it in
/// `{% raw %}…{% endraw %}`.
fn fill(path: &str, text: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::Internal(format!("the `flavor new` template syntax: {e}")))?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let context: std::collections::BTreeMap<&str, minijinja::Value> = vars
        .iter()
        .map(|(k, v)| (*k, minijinja::Value::from(*v)))
        .collect();
    env.render_str(text, minijinja::Value::from(context))
        .map_err(|e| Error::Internal(format!("the `flavor new` template of {path}: {e:#}")))
}

/// The npm lockfile the JavaScript example is built and tested with: componentize-js and
/// everything it pulls in, each with its integrity hash.
const JS_LOCK: &str = include_str!("../../../flavors/examples/js-alerter/package-lock.json");

/// [`JS_LOCK`] for the project `name` (a lockfile names its root package), so that `npm
/// install` in a new project installs exactly what strata's own tests use.
fn js_lock(name: &str) -> String {
    JS_LOCK.replacen(
        "\"name\": \"js-alerter\"",
        &format!("\"name\": \"{name}\""),
        2,
    )
}

/// The names of the packages of a Cargo.lock, in its order.
fn locked_packages(lock: &str) -> impl Iterator<Item = &str> {
    lock.lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
}

/// [`RUST_LOCK`] with the project `name`'s own entry, where cargo puts it (packages are
/// sorted by name), so that `cargo build --locked` finds the file as it would write it.
fn rust_lock(name: &str) -> String {
    let own = format!(
        "[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"serde\",\n \"strata-flavor-sdk\",\n]\n"
    );
    let mut lock = RUST_LOCK.to_string();
    let next = RUST_LOCK
        .match_indices("[[package]]\nname = \"")
        .find(|(at, start)| {
            let rest = &RUST_LOCK[at + start.len()..];
            rest.split('"').next().is_some_and(|other| other > name)
        });
    match next {
        Some((at, _)) => lock.insert_str(at, &format!("{own}\n")),
        None => lock.push_str(&format!("\n{own}")),
    }
    lock
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_javascript_project_gets_the_lockfile_of_the_example_with_its_own_name() {
        let lock = super::js_lock("my-flavor");
        let v: serde_json::Value = serde_json::from_str(&lock).expect("JSON");
        assert_eq!(v["name"], "my-flavor");
        assert_eq!(v["packages"][""]["name"], "my-flavor");
        assert!(!lock.contains("js-alerter"));
        let pinned = &v["packages"][""]["devDependencies"];
        let template: serde_json::Value =
            serde_json::from_str(include_str!("cli/templates/js/package.json.tmpl")).expect("JSON");
        assert_eq!(
            *pinned, template["devDependencies"],
            "package.json and the lock disagree"
        );
        assert!(
            v["packages"]["node_modules/@bytecodealliance/componentize-js"]["integrity"]
                .is_string()
        );
    }

    use super::*;

    /// The `name = spec` lines of the TOML table `[table]` in `text`.
    fn table<'a>(text: &'a str, table: &str) -> Vec<(&'a str, &'a str)> {
        let header = format!("[{table}]");
        text.lines()
            .skip_while(|line| line.trim() != header)
            .skip(1)
            .take_while(|line| !line.starts_with('['))
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once(" = "))
            .collect()
    }

    const FLAVORS_MANIFEST: &str = include_str!("../../../flavors/Cargo.toml");
    const FLAVORS_LOCK: &str = include_str!("../../../flavors/Cargo.lock");
    const REPO_SDK_MANIFEST: &str = include_str!("../../../flavors/sdk/Cargo.toml");

    #[test]
    fn the_vendored_sdk_depends_on_what_flavors_builds_with() {
        let workspace = table(FLAVORS_MANIFEST, "workspace.dependencies");
        let vendored = table(SDK_MANIFEST, "dependencies");
        // The same crates as flavors/sdk, each with the spec of the flavors workspace.
        let sdk_deps: Vec<&str> = table(REPO_SDK_MANIFEST, "dependencies")
            .into_iter()
            .map(|(key, spec)| {
                assert_eq!(spec, "true", "flavors/sdk: {key}");
                key.trim_end_matches(".workspace")
            })
            .collect();
        let vendored_names: Vec<&str> = vendored.iter().map(|(name, _)| *name).collect();
        assert_eq!(vendored_names, sdk_deps);
        for (name, spec) in &vendored {
            let theirs = workspace.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            assert_eq!(
                Some(*spec),
                theirs,
                "`{name}` in cli/templates/rust/sdk-Cargo.toml.tmpl differs from flavors/Cargo.toml"
            );
        }
        // The project's own dependency on serde too.
        let project = table(RUST[0].1, "dependencies");
        let serde = project.iter().find(|(n, _)| *n == "serde").map(|(_, s)| *s);
        let theirs = workspace
            .iter()
            .find(|(n, _)| *n == "serde")
            .map(|(_, s)| *s);
        assert_eq!(serde, theirs, "serde in cli/templates/rust/Cargo.toml.tmpl");
        // And the SDK's own version and edition.
        let package = table(FLAVORS_MANIFEST, "workspace.package");
        let vendored_package = table(SDK_MANIFEST, "package");
        for key in ["version", "edition", "rust-version", "license"] {
            let ours = vendored_package.iter().find(|(k, _)| *k == key);
            let theirs = package.iter().find(|(k, _)| *k == key);
            assert_eq!(
                ours.map(|p| p.1),
                theirs.map(|p| p.1),
                "`{key}` of the vendored SDK"
            );
        }
    }

    #[test]
    fn the_template_lock_is_part_of_the_flavors_lock() {
        // Each package, with its version, checksum and dependencies, as flavors/ has it:
        // a project builds with exactly what strata's own flavors are tested with.
        let blocks: Vec<&str> = RUST_LOCK.split("\n\n").skip(1).collect();
        assert!(blocks.len() > 20, "{} packages", blocks.len());
        for block in blocks {
            let block = block.trim_end();
            assert!(
                FLAVORS_LOCK.contains(&format!("{block}\n")),
                "not in flavors/Cargo.lock (regenerate cli/templates/rust/Cargo.lock.tmpl):\n{block}"
            );
        }
        assert!(RUST_LOCK.starts_with("# This file is automatically @generated by Cargo."));
    }

    /// `prefix/NAME` of every file below `dir`, in its subdirectories too.
    fn files_below(dir: &Path, prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                found.extend(files_below(&entry.path(), &name));
            } else {
                found.push(name);
            }
        }
        found
    }

    #[test]
    fn every_sdk_source_is_vendored() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flavors/sdk/src");
        let mut on_disk = files_below(&dir, "src");
        on_disk.sort();
        let mut vendored: Vec<String> = SDK_SOURCES.iter().map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(
            vendored, on_disk,
            "add the new file to `SDK_SOURCES` in scaffold.rs"
        );
    }

    #[test]
    fn every_wit_file_but_the_frozen_older_contract_is_vendored() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut on_disk: Vec<String> = files_below(&dir, ".")
            .into_iter()
            .map(|p| p.trim_start_matches("./").to_string())
            .filter(|p| !p.starts_with("0.1.0/"))
            .collect();
        on_disk.sort();
        let mut vendored: Vec<String> = WIT.iter().map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(
            vendored, on_disk,
            "add the new file to `WIT` in scaffold.rs"
        );
    }

    #[test]
    fn the_projects_own_entry_goes_where_cargo_sorts_it() {
        for name in ["aaa", "my-flavor", "zzz"] {
            let lock = rust_lock(name);
            let names: Vec<&str> = locked_packages(&lock).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{name}");
            assert!(names.contains(&name));
            assert!(lock.contains(&format!(
                "name = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"serde\",\n \"strata-flavor-sdk\",\n]\n"
            )));
            assert!(
                !lock.contains("\n\n\n") && !lock.ends_with("\n\n"),
                "{name}"
            );
            assert_eq!(
                lock.matches("[[package]]").count(),
                RUST_LOCK.matches("[[package]]").count() + 1
            );
        }
    }

    #[test]
    fn each_type_gets_the_template_of_its_world_but_a_javascript_artifact_store_is_refused() {
        use ComponentType::{Alerter, ArtifactStore, Orchestrator};
        for t in ComponentType::ALL {
            for (lang, source) in [
                ("rust", "src/lib.rs"),
                ("python", "app.py"),
                ("js", "flavor.js"),
            ] {
                let files = match template(lang, t) {
                    Ok([_, files]) => files,
                    Err(err) => {
                        assert!(lang == "js" && t == ArtifactStore, "{lang} {t:?}: {err}");
                        assert!(err.to_string().contains("no file system"), "{err}");
                        continue;
                    }
                };
                let (_, text) = files.iter().find(|(p, _)| *p == source).expect(source);
                // What only the template of the type's own world says.
                let own = match (lang, t) {
                    ("rust", Alerter) => "world: \"strata:flavor/alerter-flavor\"",
                    ("python", Alerter) => "class Alerter(exports.Alerter)",
                    ("js", Alerter) => "export const alerter",
                    ("rust", ArtifactStore) => "world: \"strata:flavor/artifact-store-flavor\"",
                    ("rust", Orchestrator) => "world: \"strata:flavor/orchestrator-flavor\"",
                    ("rust", _) => "ComponentType::{{variant}}",
                    ("python", ArtifactStore) => "class ArtifactStore(exports.ArtifactStore)",
                    ("python", Orchestrator) => "class Orchestrator(exports.Orchestrator)",
                    ("python", _) => "types.ComponentType.{{py_type}}",
                    (_, Orchestrator) => "export const orchestrator",
                    _ => "componentType: '{{type}}'",
                };
                assert!(text.contains(own), "{lang} {t:?}: no `{own}` in {source}");
            }
        }
    }

    #[test]
    fn a_template_naming_a_variable_not_given_fails() {
        let vars = [("name", "my-alerter")];
        assert_eq!(
            fill("README.md", "# {{name}}\n", &vars).unwrap(),
            "# my-alerter\n"
        );
        let err = fill("README.md", "# {{name}} ({{nmae}})\n", &vars).unwrap_err();
        assert!(err.to_string().contains("README.md"), "{err}");
        assert!(err.to_string().contains("undefined"), "{err}");
        let err = fill("x", "{{ name.upper }}", &vars).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn every_template_fills_with_the_variables_given_and_keeps_its_text() {
        let vars = [
            ("name", "n"),
            ("struct", "NFlavor"),
            ("crate", "n"),
            ("crate_file", "n"),
            ("file", "n"),
            ("py_type", "ALERTER"),
            ("variant", "Alerter"),
            ("type", "alerter"),
            ("world", "flavor"),
            ("label", "alerter"),
        ];
        for t in ComponentType::ALL {
            for lang in ["rust", "python", "js"] {
                let Ok(files) = template(lang, t) else {
                    continue;
                };
                for (path, text) in files.iter().flat_map(|f| f.iter()) {
                    let filled = fill(path, text, &vars).unwrap();
                    let mut by_hand = text.to_string();
                    for (k, v) in vars {
                        by_hand = by_hand.replace(&format!("{{{{{k}}}}}"), v);
                    }
                    assert_eq!(filled, by_hand, "{lang} {path}");
                }
            }
        }
    }

    #[test]
    fn a_rust_flavor_may_not_take_the_name_of_a_crate_it_depends_on() {
        let dir = std::env::temp_dir().join(format!("strata-scaffold-{}", std::process::id()));
        for name in ["serde", "strata-flavor-sdk", "wit-bindgen"] {
            let err = new_flavor(name, ComponentType::Alerter, "rust", Some(&dir)).unwrap_err();
            assert!(
                err.to_string().contains("every Rust flavor depends on"),
                "{err}"
            );
        }
        assert!(!dir.exists());
    }
}
