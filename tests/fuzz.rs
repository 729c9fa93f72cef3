//! Property-based fuzzing of what strata reads from people and from disk: `--key=value`
//! configuration, secret references, configuration checks, stored-record envelopes, and
//! stack export files. Each property must hold for every generated input; none may panic.
//!
//! `make test` runs the default 256 cases per property; `make fuzz` runs
//! `PROPTEST_CASES` (20,000) of each. A failing case is saved to
//! `tests/fuzz.proptest-regressions` and replayed first on every later run.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use strata::model::{
    ComponentType, FieldKind, FieldSpec, FlavorInfo, check_config, parse_assignments,
    secret_reference,
};
use strata::service::{ExportedComponent, ExportedFlavor, StackExport};
use strata::store::codec;

/// The seeds of past failures, replayed before new cases.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fuzz.proptest-regressions"
);

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,15}"
}

fn info() -> FlavorInfo {
    let field = |name: &str, kind, required, default: Option<&str>| FieldSpec {
        name: name.into(),
        kind,
        required,
        default: default.map(Into::into),
        description: String::new(),
    };
    FlavorInfo {
        name: "fuzz".into(),
        component_type: ComponentType::Alerter,
        version: "0".into(),
        description: String::new(),
        config: vec![
            field("text", FieldKind::Text, true, None),
            field("count", FieldKind::Integer, false, Some("3")),
            field("ratio", FieldKind::Float, false, None),
            field("on", FieldKind::Boolean, false, None),
            field("path", FieldKind::Path, false, None),
            field("url", FieldKind::Url, false, None),
            field("token", FieldKind::Secret, false, None),
        ],
        supported_schemes: vec![String::new()],
        requirements: Vec::new(),
        origins: Vec::new(),
        wit: "0.2.0".into(),
    }
}

proptest! {
    // A failure found once is written to tests/fuzz.proptest-regressions (kept in the
    // repository) and replayed first on every later run, before any new case.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    /// Any argument list parses or is refused with a message; never a panic.
    #[test]
    fn assignments_never_panic(args in proptest::collection::vec(".{0,40}", 0..8)) {
        let _ = parse_assignments(&args);
    }

    /// `--key=value` pairs come back exactly as given (values may hold `=`, spaces, …).
    #[test]
    fn assignments_round_trip(map in proptest::collection::btree_map(key(), ".{0,30}", 0..8)) {
        let args: Vec<String> = map.iter().map(|(k, v)| format!("--{k}={v}")).collect();
        prop_assert_eq!(parse_assignments(&args).unwrap(), map);
    }

    /// A reference parses back to its parts; anything else is not a reference or is one
    /// with non-empty parts.
    #[test]
    fn secret_references_round_trip(name in "[a-z][a-z0-9_-]{0,10}", k in key(), noise in ".{0,30}") {
        let text = format!("{{{{{name}.{k}}}}}");
        prop_assert_eq!(secret_reference(&text), Some((name.as_str(), k.as_str())));
        if let Some((n, key)) = secret_reference(&noise) {
            prop_assert!(!n.is_empty() && !key.is_empty() && !key.contains('.'));
        }
    }

    /// Checking any configuration gives an answer, never a panic; an accepted one keeps
    /// only declared fields and includes every required one.
    #[test]
    fn config_checks_never_panic(
        given in proptest::collection::btree_map(
            prop_oneof![Just("text".to_string()), Just("count".to_string()), Just("ratio".to_string()),
                        Just("on".to_string()), Just("path".to_string()), Just("url".to_string()),
                        Just("token".to_string()), key()],
            ".{0,30}", 0..7)
    ) {
        let protected = strata::model::Protected::for_home(Path::new("/home/strata"));
        if let Ok(accepted) = check_config(&info(), &given, Path::new("/work"), &protected) {
            let fields: Vec<String> = info().config.iter().map(|f| f.name.clone()).collect();
            prop_assert!(accepted.keys().all(|k| fields.contains(k)));
            prop_assert!(accepted.contains_key("text"));
        }
    }

    /// Arbitrary bytes never decode as a record by accident, and never panic.
    #[test]
    fn record_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = codec::decode::<serde_json::Value>(&bytes);
    }

    /// A record survives encoding, and any one changed byte is detected.
    #[test]
    fn records_round_trip_and_damage_is_detected(
        map in proptest::collection::btree_map(key(), ".{0,20}", 0..6),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let raw = codec::encode(&map);
        prop_assert_eq!(codec::decode::<BTreeMap<String, String>>(&raw).unwrap(), map);
        let mut damaged = raw.clone();
        let i = at.index(damaged.len());
        damaged[i] ^= flip;
        prop_assert!(codec::decode::<BTreeMap<String, String>>(&damaged).is_err());
    }

    /// Any text given to `stack import` parses or is refused; never a panic.
    #[test]
    fn export_files_never_panic(text in ".{0,200}") {
        let _ = serde_norway::from_str::<StackExport>(&text);
    }

    /// What `stack export` writes, `stack import` reads back identically, whatever the
    /// names and values hold.
    #[test]
    fn export_files_round_trip(stack in "\\PC{1,20}", name in "\\PC{1,20}", value in "\\PC{0,40}") {
        let export = StackExport {
            format: 1,
            strata_version: "0.1.0".into(),
            stack: stack.clone(),
            components: vec![ExportedComponent {
                component_type: ComponentType::Alerter,
                name: name.clone(),
                flavor: ExportedFlavor {
                    name: "f".into(),
                    sha256: "0".repeat(64),
                    source: "built-in".into(),
                },
                config: BTreeMap::from([("k".to_string(), value.clone())]),
                limits: Default::default(),
                connector: None,
            }],
        };
        let yaml = serde_norway::to_string(&export).unwrap();
        let back: StackExport = serde_norway::from_str(&yaml).unwrap();
        prop_assert_eq!(&back.stack, &stack);
        prop_assert_eq!(&back.components[0].name, &name);
        prop_assert_eq!(&back.components[0].config["k"], &value);
    }
}
