//! `strata flavor new`: a flavor project that builds out of the box.
//!
//! Each template (Rust, Python, JavaScript) is a working flavor of any type that uses
//! the `flavor` world: it keeps `running` in its state and reports it from `status`
//! (Rust and Python also provision a marker file inside their granted directory), so
//! `make test` (`strata flavor test`) passes as made. Its `make` installs the language's
//! toolchain from the registries when it is missing.
//! The project gets a copy of this strata's WIT, so it builds against the contract the
//! strata that made it implements.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::ComponentType;

/// The contract, as this binary implements it.
const WIT: [(&str, &str); 6] = [
    ("types.wit", include_str!("../../wit/types.wit")),
    ("host.wit", include_str!("../../wit/host.wit")),
    ("lifecycle.wit", include_str!("../../wit/lifecycle.wit")),
    (
        "artifact-store.wit",
        include_str!("../../wit/artifact-store.wit"),
    ),
    (
        "orchestrator.wit",
        include_str!("../../wit/orchestrator.wit"),
    ),
    ("worlds.wit", include_str!("../../wit/worlds.wit")),
];

const RUST: [(&str, &str); 5] = [
    (
        "Cargo.toml",
        include_str!("cli/templates/rust/Cargo.toml.tmpl"),
    ),
    ("Makefile", include_str!("cli/templates/rust/Makefile.tmpl")),
    (
        "README.md",
        include_str!("cli/templates/rust/README.md.tmpl"),
    ),
    ("src/lib.rs", include_str!("cli/templates/rust/lib.rs.tmpl")),
    (".gitignore", "target/\n"),
];

const PYTHON: [(&str, &str); 5] = [
    ("app.py", include_str!("cli/templates/python/app.py.tmpl")),
    (
        "Makefile",
        include_str!("cli/templates/python/Makefile.tmpl"),
    ),
    (
        "README.md",
        include_str!("cli/templates/python/README.md.tmpl"),
    ),
    (
        "requirements.txt",
        include_str!("cli/templates/python/requirements.txt.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("cli/templates/python/gitignore.tmpl"),
    ),
];

const JS: [(&str, &str); 5] = [
    ("flavor.js", include_str!("cli/templates/js/flavor.js.tmpl")),
    ("Makefile", include_str!("cli/templates/js/Makefile.tmpl")),
    ("README.md", include_str!("cli/templates/js/README.md.tmpl")),
    (
        "package.json",
        include_str!("cli/templates/js/package.json.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("cli/templates/js/gitignore.tmpl"),
    ),
];

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
    let template: &[(&str, &str)] = match lang {
        "rust" => &RUST,
        "python" | "py" => &PYTHON,
        "js" | "javascript" => &JS,
        _ => {
            return Err(Error::invalid(
                format!(
                    "there is no `{lang}` template: `strata flavor new` makes Rust, Python and JavaScript flavors"
                ),
                "use `--lang rust`, `--lang python` or `--lang js`; docs/WRITING-A-FLAVOR.md says what other languages need",
            ));
        }
    };
    if matches!(
        t,
        ComponentType::ArtifactStore | ComponentType::Orchestrator
    ) {
        return Err(Error::invalid(
            format!(
                "there is no template for {} flavors yet: they export a second interface (`{}`)",
                t.label(),
                t.as_str()
            ),
            "start from flavors/local-artifact-store or flavors/local-orchestrator in strata's repository",
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
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", name)
            .replace("{{crate_file}}", &name.replace('-', "_"))
            .replace("{{file}}", &name.replace('-', "_"))
            .replace("{{py_type}}", &t.as_str().replace('-', "_").to_uppercase())
            .replace("{{variant}}", &variant)
            .replace("{{type}}", t.as_str())
            .replace("{{label}}", &t.label())
    };
    let files = template
        .iter()
        .map(|(p, text)| (PathBuf::from(p), fill(text)))
        .chain(
            WIT.iter()
                .map(|(p, text)| (Path::new("wit").join(p), text.to_string())),
        );
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
