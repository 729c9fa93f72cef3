//! Configuration values: parsing `--key=value` arguments and checking them against a
//! flavor's schema before any flavor code runs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{FieldKind, FlavorInfo};

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: Option<String>,
    pub message: String,
}

impl FieldProblem {
    fn new(field: &str, message: String) -> Self {
        FieldProblem {
            field: Some(field.to_string()),
            message,
        }
    }
}

/// Parses `--key=value` / `--key value` arguments into pairs. Keys may be written with
/// `-` or `_` (`--kubernetes-context` is `kubernetes_context`). A repeated key is an error:
/// the user meant one of the two values and strata cannot tell which.
pub fn parse_assignments(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!(
                "unexpected argument `{arg}`: configuration is given as `--key=value`"
            ));
        };
        let (key, value) = match body.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let Some(v) = args.get(i + 1).filter(|v| !v.starts_with("--")) else {
                    return Err(format!("`--{body}` needs a value: write `--{body}=VALUE`"));
                };
                i += 1;
                (body.to_string(), v.clone())
            }
        };
        let key = key.replace('-', "_");
        if key.is_empty() {
            return Err(format!("`{arg}` has no key: write `--key=value`"));
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("`--{key}` is given twice: give it once"));
        }
        i += 1;
    }
    Ok(out)
}

/// Checks that `value` is a valid value of `kind`, ignoring schemes and grants.
pub fn check_kind(kind: FieldKind, value: &str) -> Result<(), String> {
    match kind {
        FieldKind::Text | FieldKind::Secret => Ok(()),
        FieldKind::Integer => value
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("`{value}` is not an integer")),
        FieldKind::Float => match value.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(()),
            _ => Err(format!("`{value}` is not a number")),
        },
        FieldKind::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("`{value}` is not a boolean: use `true` or `false`")),
        },
        FieldKind::Path if value.is_empty() => Err("the path is empty".into()),
        FieldKind::Path => Ok(()),
        FieldKind::Url => {
            let rest = value
                .strip_prefix("https://")
                .or_else(|| value.strip_prefix("http://"))
                .ok_or_else(|| format!("`{value}` is not an http:// or https:// URL"))?;
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(format!("`{value}` has no host"));
            }
            Ok(())
        }
    }
}

/// The scheme of a path value (`s3` in `s3://bucket/x`), or `""` for a plain path.
pub fn scheme_of(value: &str) -> &str {
    match value.split_once("://") {
        Some((s, _))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            s
        }
        _ => "",
    }
}

/// A reference to a stored secret: `{{name.key}}`.
pub fn secret_reference(value: &str) -> Option<(&str, &str)> {
    let inner = value.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let (name, key) = inner.split_once('.')?;
    (!name.is_empty() && !key.is_empty() && !key.contains('.')).then_some((name, key))
}

/// Makes a local path absolute (against `base`) and removes `.` and `..` lexically.
pub fn normalize_local_path(value: &str, base: &Path) -> PathBuf {
    let p = Path::new(value);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// What no directory grant may reach: strata's home (its store, compiled code, secret
/// key, daemon files, and whatever it keeps there later) — neither the home itself, nor
/// anything that holds it, nor anything inside it — except the data directories strata
/// makes for components, below `HOME/stores/`.
#[derive(Clone, Debug)]
pub struct Protected {
    pub home: PathBuf,
    pub data: PathBuf,
    /// On a team server: every grant must be inside `data`. Its users are not the
    /// machine's, so no other directory of the server is theirs to hand a flavor.
    pub confined: bool,
}

impl Protected {
    /// The rule for a home at `root` (made absolute and, as far as it exists, with
    /// symlinks resolved, so that no other spelling of it slips past).
    pub fn for_home(root: &Path) -> Protected {
        let home = resolve_existing(&normalize_local_path(
            &root.to_string_lossy(),
            Path::new("/"),
        ));
        Protected {
            data: home.join("stores"),
            home,
            confined: false,
        }
    }
}

/// `path` (absolute, normalised) with symlinks resolved in the part of it that exists:
/// what the user named, spelled the one way strata will open it (never through a link).
pub fn resolve_existing(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for c in rest.iter().rev() {
                out.push(c);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Checks `given` (the user's values) against the flavor's schema and returns them
/// normalised: local paths made absolute, with symlinks resolved. `base` is the
/// directory relative paths are taken from; `protected` is strata's home, which no
/// grant may hold or enter.
///
/// Every problem is reported, not just the first.
pub fn check_config(
    info: &FlavorInfo,
    given: &BTreeMap<String, String>,
    base: &Path,
    protected: &Protected,
) -> Result<BTreeMap<String, String>, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    for (key, value) in given {
        if let Err(e) = super::text::check_name_chars("config key", key) {
            let shown = super::text::visible(key);
            problems.push(FieldProblem::new(&shown, e.to_string()));
            continue;
        }
        let Some(spec) = info.field(key) else {
            let accepted: Vec<&str> = info.config.iter().map(|f| f.name.as_str()).collect();
            let accepts = if accepted.is_empty() {
                "it takes no configuration".to_string()
            } else {
                format!("it accepts: {}", accepted.join(", "))
            };
            problems.push(FieldProblem::new(
                key,
                format!(
                    "unknown config key `{key}` for flavor `{}`: {accepts}",
                    info.name
                ),
            ));
            continue;
        };
        match check_value(info, spec.kind, key, value, base, protected) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(m) => problems.push(FieldProblem::new(key, m)),
        }
    }
    for spec in &info.config {
        if spec.required && spec.default.is_none() && !given.contains_key(&spec.name) {
            problems.push(FieldProblem::new(
                &spec.name,
                format!(
                    "missing required field `{}` ({}): {}",
                    spec.name,
                    spec.kind.as_str(),
                    spec.description
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn check_value(
    info: &FlavorInfo,
    kind: FieldKind,
    key: &str,
    value: &str,
    base: &Path,
    protected: &Protected,
) -> Result<String, String> {
    if kind == FieldKind::Secret {
        return match secret_reference(value) {
            Some(_) => Ok(value.trim().to_string()),
            None => Err(format!(
                "field `{key}` holds a secret and takes a reference, not a value: store the value with `strata secret create NAME --{key}=VALUE`, then give `--{key}={{{{NAME.{key}}}}}`"
            )),
        };
    }
    if secret_reference(value).is_some() {
        if kind == FieldKind::Path {
            return Err(format!(
                "field `{key}` takes a directory, not a secret reference: a directory is a grant, and every grant must show in `describe`; give the path itself"
            ));
        }
        // A reference in a non-secret field is resolved at call time like any other.
        return Ok(value.trim().to_string());
    }
    check_kind(kind, value).map_err(|e| format!("field `{key}` ({}): {e}", kind.as_str()))?;
    if kind != FieldKind::Path {
        return Ok(value.to_string());
    }
    let scheme = scheme_of(value);
    let local_ok =
        info.supported_schemes.is_empty() || info.supported_schemes.iter().any(|s| s.is_empty());
    if !scheme.is_empty() {
        if !info.supported_schemes.iter().any(|s| s == scheme) {
            return Err(format!(
                "field `{key}`: flavor `{}` does not support `{scheme}://` paths; it supports {}",
                info.name,
                describe_schemes(&info.supported_schemes)
            ));
        }
        return Ok(value.to_string());
    }
    if !local_ok {
        return Err(format!(
            "field `{key}`: flavor `{}` does not support local paths; it supports {}",
            info.name,
            describe_schemes(&info.supported_schemes)
        ));
    }
    if !base.is_absolute() && !Path::new(value).is_absolute() {
        // No directory to take it from (a REST request has none).
        return Err(format!(
            "field `{key}`: `{value}` is a relative path, and this request has no working directory to take it from: give an absolute path"
        ));
    }
    let path = resolve_existing(&normalize_local_path(value, base));
    check_grantable(&path, protected).map_err(|e| format!("field `{key}`: {e}"))?;
    Ok(path.to_string_lossy().into_owned())
}

/// A local path becomes a directory the flavor can read and write: refuse the ones that
/// would hand it the whole machine or strata's own files. Every grant goes through this,
/// however it was given (flag, prompt, import file, REST body), and again at every call.
pub fn check_grantable(path: &Path, protected: &Protected) -> Result<(), String> {
    if !path.is_absolute() || normalize_local_path(&path.to_string_lossy(), Path::new("/")) != path
    {
        return Err(format!(
            "`{}` is not an absolute path without `.` and `..`: give the directory's full path",
            path.display()
        ));
    }
    if path == Path::new("/") {
        return Err(
            "`/` would grant the whole file system to the flavor: give a directory of its own"
                .into(),
        );
    }
    if protected.confined && !(path.starts_with(&protected.data) && path != protected.data) {
        return Err(format!(
            "`{}` is outside this team server's data directory: a component on a team server may be granted only a directory under {}",
            path.display(),
            protected.data.display()
        ));
    }
    let home = &protected.home;
    if home.starts_with(path) {
        return Err(format!(
            "`{}` holds strata's home ({}), its store and secret key: give a directory outside it",
            path.display(),
            home.display()
        ));
    }
    if path.starts_with(home) && !(path.starts_with(&protected.data) && path != protected.data) {
        return Err(format!(
            "`{}` is inside strata's home ({}): give a directory outside it (strata's own data directories for components are under {})",
            path.display(),
            home.display(),
            protected.data.display()
        ));
    }
    Ok(())
}

fn describe_schemes(schemes: &[String]) -> String {
    let list: Vec<String> = schemes
        .iter()
        .map(|s| {
            if s.is_empty() {
                "local paths".to_string()
            } else {
                format!("`{s}://`")
            }
        })
        .collect();
    if list.is_empty() {
        "local paths".into()
    } else {
        list.join(", ")
    }
}

/// The configuration a flavor sees: the stored values plus the defaults of fields that
/// were not given, in schema order.
pub fn effective_config(
    info: &FlavorInfo,
    stored: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    info.config
        .iter()
        .filter_map(|f| {
            stored
                .get(&f.name)
                .or(f.default.as_ref())
                .map(|v| (f.name.clone(), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComponentType, FieldSpec};

    fn store_info() -> FlavorInfo {
        FlavorInfo {
            name: "local".into(),
            component_type: ComponentType::ArtifactStore,
            version: "1".into(),
            description: "d".into(),
            config: vec![
                FieldSpec {
                    name: "path".into(),
                    kind: FieldKind::Path,
                    required: true,
                    default: None,
                    description: "root".into(),
                },
                FieldSpec {
                    name: "retries".into(),
                    kind: FieldKind::Integer,
                    required: false,
                    default: Some("3".into()),
                    description: "n".into(),
                },
            ],
            supported_schemes: vec!["".into()],
            requirements: vec![],
            origins: vec![],
            wit: "0.2.0".into(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn assignments_accept_both_spellings_and_refuse_repeats() {
        let args: Vec<String> = ["--path=/x", "--kube-context", "ctx"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse_assignments(&args).unwrap(),
            map(&[("path", "/x"), ("kube_context", "ctx")])
        );
        let twice: Vec<String> = ["--a=1", "--a=2"].iter().map(|s| s.to_string()).collect();
        assert!(parse_assignments(&twice).unwrap_err().contains("twice"));
        assert!(
            parse_assignments(&["path".to_string()])
                .unwrap_err()
                .contains("--key=value")
        );
    }

    #[test]
    fn relative_paths_become_absolute() {
        let got = check_config(
            &store_info(),
            &map(&[("path", "data/../store")]),
            Path::new("/work"),
            &Protected::for_home(Path::new("/home/h")),
        )
        .unwrap();
        assert_eq!(got["path"], "/work/store");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = check_config(
            &store_info(),
            &map(&[("retries", "many"), ("colour", "red")]),
            Path::new("/"),
            &Protected::for_home(Path::new("/h")),
        )
        .unwrap_err();
        let text: Vec<&str> = err.iter().map(|p| p.message.as_str()).collect();
        assert!(
            text.iter()
                .any(|m| m.contains("unknown config key `colour`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|m| m.contains("`many` is not an integer")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|m| m.contains("missing required field `path`")),
            "{text:?}"
        );
    }

    #[test]
    fn schemes_and_dangerous_grants_are_refused() {
        let info = store_info();
        let home = Protected::for_home(Path::new("/home/u/.strata"));
        let refused = |path: &str| {
            check_config(&info, &map(&[("path", path)]), Path::new("/"), &home)
                .unwrap_err()
                .remove(0)
                .message
        };
        assert!(refused("s3://bucket").contains("does not support `s3://`"));
        assert!(refused("/").contains("whole file system"));
        assert!(refused("/home").contains("holds strata's home"));
        assert!(refused("/home/u/.strata").contains("holds strata's home"));
        assert!(refused("/home/u/.strata/db/x").contains("inside strata's home"));
        assert!(refused("/home/u/.strata/stores").contains("inside strata's home"));
        assert!(refused("{{s.k}}").contains("not a secret reference"));
        assert!(
            check_config(
                &info,
                &map(&[("path", "/home/u/.strata/stores/a")]),
                Path::new("/"),
                &home
            )
            .is_ok()
        );
        assert!(check_grantable(Path::new("/a/../b"), &home).is_err());
        assert!(check_grantable(Path::new("rel"), &home).is_err());
    }

    #[test]
    fn a_path_through_a_symlink_is_stored_as_the_real_one() {
        let t = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(t.path()).unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let link = t.path().join("link/new/deeper");
        assert_eq!(resolve_existing(&link), real.join("new/deeper"));
        // A link to the root is seen for what it is.
        std::os::unix::fs::symlink("/", t.path().join("root")).unwrap();
        let e = check_config(
            &store_info(),
            &map(&[("path", &t.path().join("root").to_string_lossy())]),
            Path::new("/"),
            &Protected::for_home(Path::new("/home/u/.strata")),
        )
        .unwrap_err();
        assert!(e[0].message.contains("whole file system"), "{e:?}");
    }

    #[test]
    fn secrets_are_references() {
        assert_eq!(secret_reference("{{aws.key}}"), Some(("aws", "key")));
        assert_eq!(secret_reference("{{ aws.key }}"), Some(("aws", "key")));
        assert_eq!(secret_reference("plain"), None);
    }

    #[test]
    fn defaults_fill_the_effective_config() {
        let eff = effective_config(&store_info(), &map(&[("path", "/p")]));
        assert_eq!(
            eff,
            vec![("path".into(), "/p".into()), ("retries".into(), "3".into())]
        );
    }
}
