//! The records strata keeps and shows.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The role a component plays in a stack. Mirrors `strata:flavor/types.component-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentType {
    Orchestrator,
    ArtifactStore,
    MetadataStore,
    ContainerRegistry,
    SecretsManager,
    StepOperator,
    ModelDeployer,
    FeatureStore,
    ExperimentTracker,
    Alerter,
    DataValidator,
    ImageBuilder,
    Annotator,
    ModelRegistry,
    Deployer,
}

impl ComponentType {
    /// Every type, in the order stacks show them and bring them up: storage and
    /// registries first, the orchestrator (which uses them all) last.
    pub const ALL: [ComponentType; 15] = [
        ComponentType::ArtifactStore,
        ComponentType::MetadataStore,
        ComponentType::ContainerRegistry,
        ComponentType::SecretsManager,
        ComponentType::ImageBuilder,
        ComponentType::FeatureStore,
        ComponentType::ExperimentTracker,
        ComponentType::ModelRegistry,
        ComponentType::DataValidator,
        ComponentType::Annotator,
        ComponentType::Alerter,
        ComponentType::StepOperator,
        ComponentType::ModelDeployer,
        ComponentType::Deployer,
        ComponentType::Orchestrator,
    ];

    /// The name used on the command line and in WIT: `artifact-store`.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Orchestrator => "orchestrator",
            ComponentType::ArtifactStore => "artifact-store",
            ComponentType::MetadataStore => "metadata-store",
            ComponentType::ContainerRegistry => "container-registry",
            ComponentType::SecretsManager => "secrets-manager",
            ComponentType::StepOperator => "step-operator",
            ComponentType::ModelDeployer => "model-deployer",
            ComponentType::FeatureStore => "feature-store",
            ComponentType::ExperimentTracker => "experiment-tracker",
            ComponentType::Alerter => "alerter",
            ComponentType::DataValidator => "data-validator",
            ComponentType::ImageBuilder => "image-builder",
            ComponentType::Annotator => "annotator",
            ComponentType::ModelRegistry => "model-registry",
            ComponentType::Deployer => "deployer",
        }
    }

    /// The name in prose: `artifact store`.
    pub fn label(self) -> String {
        self.as_str().replace('-', " ")
    }

    /// The column heading in tables: `ARTIFACT_STORE`, as ZenML's.
    pub fn column(self) -> String {
        self.as_str().replace('-', "_").to_uppercase()
    }

    /// Every stack must have one of these.
    pub fn required_in_stack(self) -> bool {
        matches!(
            self,
            ComponentType::Orchestrator | ComponentType::ArtifactStore
        )
    }

    /// A stack may hold several components of this type (ZenML: step operators).
    pub fn allows_many(self) -> bool {
        matches!(self, ComponentType::StepOperator)
    }
}

/// A component type from its name (`artifact-store`): the one parser of type names, for
/// the command line, the REST paths and the scaffolds alike.
impl std::str::FromStr for ComponentType {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::error::Error::NotFound {
                what: format!("component type `{}`", super::text::visible(s)),
                hint: format!("use one of: {}", Self::ALL.map(|t| t.as_str()).join(", ")),
            })
    }
}

impl fmt::Display for ComponentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of value a configuration field holds. Mirrors `field-kind` in WIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    Text,
    Integer,
    Float,
    Boolean,
    Path,
    Url,
    Secret,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Integer => "integer",
            FieldKind::Float => "float",
            FieldKind::Boolean => "boolean",
            FieldKind::Path => "path",
            FieldKind::Url => "url",
            FieldKind::Secret => "secret",
        }
    }
}

/// One configuration field of a flavor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    pub default: Option<String>,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequirementKind {
    Requires,
    Refuses,
}

/// A flavor's rule about the rest of its stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackRequirement {
    pub kind: RequirementKind,
    pub component_type: ComponentType,
    pub flavor: Option<String>,
    pub reason: String,
}

/// What a flavor says about itself (`describe`), checked and kept at registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlavorInfo {
    pub name: String,
    pub component_type: ComponentType,
    pub version: String,
    pub description: String,
    pub config: Vec<FieldSpec>,
    pub supported_schemes: Vec<String>,
    pub requirements: Vec<StackRequirement>,
    /// Fixed origins the flavor reaches beyond its `url` fields (`flavor-info.origins`,
    /// new in strata:flavor@0.2.0), normalized `scheme://host:port`; granted only once
    /// the user accepted them at registration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// The version of the `strata:flavor` WIT package it was built against.
    #[serde(default = "wit_0_1_0")]
    pub wit: String,
}

/// The WIT version of a flavor recorded before strata kept it: the only one there was.
fn wit_0_1_0() -> String {
    "0.1.0".into()
}

/// Names a flavor may not give its fields: the command line uses them for a
/// component's own limits.
pub const RESERVED_FIELDS: [&str; 6] = [
    "timeout_ms",
    "memory_mb",
    "output",
    "home",
    "verbose",
    "connector",
];

impl FlavorInfo {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.config.iter().find(|f| f.name == name)
    }

    /// Problems with the description itself: a flavor must be usable from the command
    /// line, so names are restricted and defaults must be valid values of their kind.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !valid_flavor_name(&self.name) {
            out.push(format!(
                "flavor name `{}` is not valid: use lower case letters, digits, `-` and `_`, starting with a letter (at most 64)",
                self.name
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.config {
            if !valid_field_name(&f.name) {
                out.push(format!(
                    "field name `{}` is not valid: use lower case letters, digits and `_`, starting with a letter (at most 64)",
                    f.name
                ));
            }
            if !seen.insert(f.name.as_str()) {
                out.push(format!("field `{}` is declared twice", f.name));
            }
            if RESERVED_FIELDS.contains(&f.name.as_str()) {
                out.push(format!(
                    "field name `{}` is reserved: `--timeout-ms`, `--memory-mb`, `--connector`, `--output`, `--home` and `--verbose` are strata's own options",
                    f.name
                ));
            }
            if let Some(d) = &f.default {
                if let Some(why) = default_problem(f.kind, d) {
                    out.push(format!("the default of field `{}` {why}", f.name));
                } else if let Err(e) = super::config::check_kind(f.kind, d) {
                    out.push(format!(
                        "the default of field `{}` is not valid: {e}",
                        f.name
                    ));
                }
            }
            if f.description.len() > MAX_TEXT {
                out.push(format!(
                    "the description of field `{}` is {} bytes; strata keeps at most {MAX_TEXT}",
                    f.name,
                    f.description.len()
                ));
            }
        }
        for (what, text, max) in [
            ("version", &self.version, MAX_NAME_TEXT),
            ("description", &self.description, MAX_DESCRIPTION),
        ] {
            if text.len() > max {
                out.push(format!(
                    "its {what} is {} bytes; strata keeps at most {max}",
                    text.len()
                ));
            }
        }
        for o in &self.origins {
            if let Err(e) = crate::origin::Origin::of_url(o) {
                out.push(format!("its extra origin {e}"));
            }
        }
        for r in &self.requirements {
            if r.reason.len() > MAX_TEXT {
                out.push(format!(
                    "a requirement's reason is {} bytes; strata keeps at most {MAX_TEXT}",
                    r.reason.len()
                ));
            }
        }
        for s in &self.supported_schemes {
            if !s.is_empty()
                && !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                out.push(format!("supported scheme `{s}` is not a URL scheme"));
            }
        }
        for r in &self.requirements {
            if let Some(f) = &r.flavor
                && !valid_flavor_name(f)
            {
                out.push(format!(
                    "a requirement names flavor `{f}`, which is not a valid flavor name: use lower case letters, digits, `-` and `_`, starting with a letter (at most 64)"
                ));
            }
        }
        out
    }
}

/// The longest version string strata keeps from a flavor.
pub const MAX_NAME_TEXT: usize = 64;
/// The longest description of a flavor.
pub const MAX_DESCRIPTION: usize = 4096;
/// The longest description of a field, default, or reason of a requirement.
pub const MAX_TEXT: usize = 1024;

/// Why a flavor may not declare `default` for a field of `kind`, if it may not: a
/// default is the flavor's word, not the user's, so it may neither grant a directory
/// nor name a secret (strata would resolve it, and hand the flavor a secret the user
/// never gave it).
fn default_problem(kind: FieldKind, default: &str) -> Option<String> {
    if default.len() > MAX_TEXT {
        return Some(format!(
            "is {} bytes; strata keeps at most {MAX_TEXT}",
            default.len()
        ));
    }
    if kind == FieldKind::Secret {
        return Some(
            "is set, and a secret field may have none: the user names the secret (`--FIELD={{NAME.KEY}}`)"
                .into(),
        );
    }
    if default.contains("{{") {
        return Some(format!(
            "(`{default}`) names a secret, and only the user may name one: a secret reference is resolved only where the user typed it"
        ));
    }
    if kind == FieldKind::Path && super::config::scheme_of(default).is_empty() {
        return Some(format!(
            "(`{default}`) is a local directory, and a directory is granted only when the user names it: make the field required, or leave it without a default"
        ));
    }
    None
}

pub fn valid_flavor_name(s: &str) -> bool {
    valid_ident(s, "-_")
}

pub fn valid_field_name(s: &str) -> bool {
    valid_ident(s, "_")
}

/// Names of components and stacks: letters, digits, `-`, `_`, `.`; no spaces or slashes
/// (they become store keys and file names).
pub fn valid_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with('.')
}

fn valid_ident(s: &str, extra: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
}

/// Where a flavor's code came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FlavorSource {
    /// Shipped inside the strata binary.
    BuiltIn,
    /// Registered from a file, by hand or as part of an integration.
    File {
        path: String,
        /// The integration (`strata integration install NAME`) it came with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        integration: Option<String>,
    },
}

/// The first 12 hex digits of a sha256, as strata shows it (the whole text if shorter).
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// A registered flavor: its description and the code behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlavorRecord {
    pub info: FlavorInfo,
    /// sha256 of the `.wasm`, hex.
    pub sha256: String,
    pub size: u64,
    pub source: FlavorSource,
    pub registered_at: u64,
    /// The bounds of every call into this flavor.
    #[serde(default)]
    pub limits: crate::calls::Limits,
    /// The extra origins the flavor declares, accepted by the user at registration
    /// (`--allow-origin`): granted to every call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

impl FlavorRecord {
    pub fn is_builtin(&self) -> bool {
        self.source == FlavorSource::BuiltIn
    }

    /// `sha256:0123abcd… (file /x/y.wasm)` — the SOURCE column of `flavor list`.
    pub fn source_label(&self) -> String {
        let short = short_sha(&self.sha256);
        match &self.source {
            FlavorSource::BuiltIn => format!("sha256:{short} (built-in)"),
            FlavorSource::File { path, .. } => format!("sha256:{short} ({path})"),
        }
    }
}

/// A configured instance of a flavor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub id: String,
    pub name: String,
    pub component_type: ComponentType,
    pub flavor: String,
    /// The values given by the user (defaults are not stored: they come from the flavor).
    pub config: BTreeMap<String, String>,
    pub created_at: u64,
    /// Bounds of this component's calls, where they differ from its flavor's.
    #[serde(default, skip_serializing_if = "LimitOverrides::is_empty")]
    pub limits: LimitOverrides,
    /// The id of the service connector it is bound to (`--connector=NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// A component's own deadline and memory cap, instead of its flavor's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        self.timeout_ms.is_none() && self.memory_mb.is_none()
    }

    /// `base` (the flavor's limits) with these overrides applied.
    pub fn over(&self, base: crate::calls::Limits) -> crate::calls::Limits {
        crate::calls::Limits {
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            memory_bytes: self
                .memory_mb
                .map_or(base.memory_bytes, |m| m * 1024 * 1024),
            ..base
        }
    }
}

/// Where a component is in its lifecycle, as strata last recorded it.
///
/// The `-ing` phases are written before a call into the flavor and replaced after it:
/// finding one means the call was interrupted (strata was killed mid-call), and the next
/// `up` or `down` repeats it (lifecycle calls must be idempotent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Never provisioned, or deprovisioned.
    Registered,
    Provisioning,
    /// Resources exist; not running (ZenML: provisioned and suspended).
    Provisioned,
    Resuming,
    Running,
    Suspending,
    Deprovisioning,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Registered => "registered",
            Phase::Provisioning => "provisioning",
            Phase::Provisioned => "provisioned",
            Phase::Resuming => "resuming",
            Phase::Running => "running",
            Phase::Suspending => "suspending",
            Phase::Deprovisioning => "deprovisioning",
        }
    }

    /// A phase written before a call that has not been replaced by its outcome.
    pub fn is_interrupted(self) -> bool {
        matches!(
            self,
            Phase::Provisioning | Phase::Resuming | Phase::Suspending | Phase::Deprovisioning
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last failure of a component's lifecycle call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub call: String,
    pub message: String,
    pub at: u64,
}

/// What strata keeps about a component's lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentState {
    pub phase: Phase,
    /// The opaque bytes the flavor last returned.
    pub state: Option<Vec<u8>>,
    pub last_error: Option<LastError>,
    pub updated_at: u64,
}

impl ComponentState {
    pub fn new(now: u64) -> Self {
        ComponentState {
            phase: Phase::Registered,
            state: None,
            last_error: None,
            updated_at: now,
        }
    }
}

/// A named set of components: at most one of each type, except step operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    pub id: String,
    pub name: String,
    /// Component names by type.
    pub components: BTreeMap<ComponentType, Vec<String>>,
    pub created_at: u64,
}

impl StackRecord {
    /// The stack's components in bring-up order (`ComponentType::ALL`).
    pub fn ordered(&self) -> Vec<(ComponentType, String)> {
        ComponentType::ALL
            .into_iter()
            .flat_map(|t| {
                self.components
                    .get(&t)
                    .into_iter()
                    .flatten()
                    .map(move |n| (t, n.clone()))
            })
            .collect()
    }

    pub fn uses(&self, t: ComponentType, name: &str) -> bool {
        self.components
            .get(&t)
            .is_some_and(|v| v.iter().any(|n| n == name))
    }

    pub fn first(&self, t: ComponentType) -> Option<&str> {
        self.components
            .get(&t)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// The name of the objects `strata init` creates; they cannot be deleted.
pub const DEFAULT_NAME: &str = "default";

/// A time strata recorded (milliseconds since the Unix epoch) as a UTC calendar date
/// and time of day: `(year, month, day, hour, minute, second, millisecond)`.
pub fn civil_utc(ms: u64) -> (i64, u64, u64, u64, u64, u64, u64) {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Days since 1970-01-01 to a date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u64;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    )
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for t in ComponentType::ALL {
            assert_eq!(t.as_str().parse::<ComponentType>().ok(), Some(t));
        }
        let e = "artifact_store".parse::<ComponentType>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "component type `artifact_store` does not exist"
        );
        assert!("nope".parse::<ComponentType>().is_err());
    }

    #[test]
    fn orchestrator_comes_up_last() {
        assert_eq!(
            ComponentType::ALL.last(),
            Some(&ComponentType::Orchestrator)
        );
    }

    fn info(config: Vec<FieldSpec>) -> FlavorInfo {
        FlavorInfo {
            name: "f".into(),
            component_type: ComponentType::Alerter,
            version: "1".into(),
            description: "d".into(),
            config,
            supported_schemes: vec!["s3".into()],
            requirements: Vec::new(),
            origins: Vec::new(),
            wit: "0.2.0".into(),
        }
    }

    fn field(kind: FieldKind, default: &str) -> FieldSpec {
        FieldSpec {
            name: "x".into(),
            kind,
            required: false,
            default: Some(default.into()),
            description: String::new(),
        }
    }

    #[test]
    fn a_default_may_neither_grant_a_directory_nor_name_a_secret() {
        for (kind, default, says) in [
            (FieldKind::Path, "/", "is a local directory"),
            (FieldKind::Path, "/etc", "is a local directory"),
            (FieldKind::Path, "relative/dir", "is a local directory"),
            (
                FieldKind::Secret,
                "{{aws.key}}",
                "a secret field may have none",
            ),
            (FieldKind::Secret, "plain", "a secret field may have none"),
            (FieldKind::Text, "{{s.k}}", "names a secret"),
            (FieldKind::Url, "https://x/{{s.k}}", "names a secret"),
        ] {
            let p = info(vec![field(kind, default)]).problems();
            assert!(p.iter().any(|m| m.contains(says)), "{default}: {p:?}");
        }
        // A remote default for a path field grants nothing: allowed.
        assert!(
            info(vec![field(FieldKind::Path, "s3://bucket/x")])
                .problems()
                .is_empty()
        );
        assert!(
            info(vec![field(FieldKind::Text, "fine")])
                .problems()
                .is_empty()
        );
    }

    #[test]
    fn describe_texts_are_bounded() {
        let mut i = info(vec![field(FieldKind::Text, &"d".repeat(MAX_TEXT + 1))]);
        i.version = "v".repeat(MAX_NAME_TEXT + 1);
        i.description = "x".repeat(MAX_DESCRIPTION + 1);
        i.config[0].description = "y".repeat(MAX_TEXT + 1);
        let p = i.problems().join("\n");
        for says in [
            "the default of field `x` is 1025 bytes",
            "its version is 65 bytes",
            "its description is 4097 bytes",
            "the description of field `x` is 1025 bytes",
        ] {
            assert!(p.contains(says), "{says}: {p}");
        }
    }

    #[test]
    fn names_are_restricted() {
        assert!(valid_flavor_name("local"));
        assert!(valid_flavor_name("s3-v2"));
        assert!(!valid_flavor_name("Bad Name!"));
        assert!(!valid_field_name("a-b"));
        assert!(valid_object_name("my_store.v2"));
        assert!(!valid_object_name("../x"));
        assert!(!valid_object_name(""));
    }
}
