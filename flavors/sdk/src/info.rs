//! What a flavor says about itself in `describe`: [`Info`], built field by [`Field`].

use crate::bindings::strata::flavor::types::{
    ComponentType, FieldKind, FieldSpec, FlavorInfo, RequirementKind, StackRequirement,
};

/// A flavor's description, as [`Flavor::info`](crate::Flavor::info) returns it and
/// `strata <type> flavor describe` shows it: name, component type, version, a sentence,
/// the configuration fields, rules about the rest of the stack, and the fixed origins it
/// reaches over the network, if any.
///
/// ```
/// use strata_flavor_sdk::{ComponentType, Field, Info};
///
/// let info = Info::new("my-alerter", ComponentType::Alerter)
///     .version(env!("CARGO_PKG_VERSION"))
///     .description("Writes alerts to a file.")
///     .field(Field::text("channel", "The channel alerts go to, like `ops`.").required())
///     .field(Field::integer("threshold", "Failures in a row that raise an alert.").default(3))
///     .field(Field::path("path", "Directory where alerts.log is written.").required())
///     .requires(ComponentType::ExperimentTracker, "alerts link to the run's experiment");
/// let described = info.build();
/// assert_eq!(described.config[1].default.as_deref(), Some("3"));
/// assert_eq!(described.supported_schemes, [""]);
/// ```
#[derive(Debug, Clone)]
pub struct Info {
    info: FlavorInfo,
}

impl Info {
    /// A flavor named `name` (lower case letters, digits, `-` and `_`) of type
    /// `component_type`. It has no fields and no requirements yet, accepts plain local
    /// paths in its `path` fields, has an empty description, and says it is `unversioned`
    /// until [`Info::version`].
    pub fn new(name: impl Into<String>, component_type: ComponentType) -> Self {
        Info {
            info: FlavorInfo {
                name: name.into(),
                component_type,
                version: "unversioned".to_string(),
                description: String::new(),
                config: Vec::new(),
                supported_schemes: vec![String::new()],
                requirements: Vec::new(),
                origins: Vec::new(),
            },
        }
    }

    /// The flavor's own version, free form: `.version(env!("CARGO_PKG_VERSION"))` says
    /// the crate's.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.info.version = version.into();
        self
    }

    /// One or two sentences for `flavor list` and `flavor describe`.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.info.description = description.into();
        self
    }

    /// Adds a configuration field. strata refuses every key not declared here.
    #[must_use]
    pub fn field(mut self, field: Field) -> Self {
        self.info.config.push(field.spec);
        self
    }

    /// The URL schemes a `path` field may use, without `://` (`"s3"`), replacing the
    /// default (`""`, plain local paths only). Keep `""` in the list to accept local
    /// paths too.
    #[must_use]
    pub fn schemes<S: Into<String>>(mut self, schemes: impl IntoIterator<Item = S>) -> Self {
        self.info.supported_schemes = schemes.into_iter().map(Into::into).collect();
        self
    }

    /// A fixed origin the flavor reaches beyond its `url` fields, as
    /// `scheme://host[:port]` (a registry's token service, say). strata shows it at
    /// registration and grants it only once the user accepts it
    /// (`flavor register --allow-origin=ORIGIN`). Most flavors need none: a `url` field
    /// grants its own origin, the usual way to reach a service.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.info.origins.push(origin.into());
        self
    }

    /// The stack must hold a component of `component_type`; `reason` is shown when it
    /// does not.
    #[must_use]
    pub fn requires(self, component_type: ComponentType, reason: impl Into<String>) -> Self {
        self.rule(
            RequirementKind::Requires,
            component_type,
            None,
            reason.into(),
        )
    }

    /// The stack must hold a component of `component_type` and flavor `flavor`.
    #[must_use]
    pub fn requires_flavor(
        self,
        component_type: ComponentType,
        flavor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        self.rule(
            RequirementKind::Requires,
            component_type,
            Some(flavor.into()),
            reason.into(),
        )
    }

    /// The stack must not hold a component of `component_type`.
    #[must_use]
    pub fn refuses(self, component_type: ComponentType, reason: impl Into<String>) -> Self {
        self.rule(
            RequirementKind::Refuses,
            component_type,
            None,
            reason.into(),
        )
    }

    /// The stack must not hold a component of `component_type` and flavor `flavor`.
    #[must_use]
    pub fn refuses_flavor(
        self,
        component_type: ComponentType,
        flavor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        self.rule(
            RequirementKind::Refuses,
            component_type,
            Some(flavor.into()),
            reason.into(),
        )
    }

    fn rule(
        mut self,
        kind: RequirementKind,
        component_type: ComponentType,
        flavor: Option<String>,
        reason: String,
    ) -> Self {
        self.info.requirements.push(StackRequirement {
            kind,
            component_type,
            flavor,
            reason,
        });
        self
    }

    /// The component type this flavor implements.
    pub fn component_type(&self) -> ComponentType {
        self.info.component_type
    }

    /// The record `describe` returns.
    pub fn build(self) -> FlavorInfo {
        self.info
    }
}

impl From<Info> for FlavorInfo {
    fn from(info: Info) -> Self {
        info.build()
    }
}

/// One configuration field: its name (lower case letters, digits and `_`, given as
/// `--name=value`), its kind, whether it is required, its default and a sentence.
/// strata checks the kind of every value before the flavor sees it, and a `path` field
/// is what grants the flavor a directory.
#[derive(Debug, Clone)]
pub struct Field {
    spec: FieldSpec,
}

impl Field {
    fn new(name: impl Into<String>, kind: FieldKind, description: impl Into<String>) -> Self {
        Field {
            spec: FieldSpec {
                name: name.into(),
                kind,
                required: false,
                default: None,
                description: description.into(),
            },
        }
    }

    /// Free text.
    pub fn text(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Text, description)
    }

    /// A signed 64-bit integer, in decimal.
    pub fn integer(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Integer, description)
    }

    /// A decimal number.
    pub fn float(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Float, description)
    }

    /// `true` or `false`.
    pub fn boolean(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Boolean, description)
    }

    /// A location. A plain local path becomes a directory the flavor may read and write
    /// (its grant), absolute by the time the flavor sees it; a path with a scheme must use
    /// one of [`Info::schemes`].
    pub fn path(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Path, description)
    }

    /// An `http://` or `https://` URL.
    pub fn url(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Url, description)
    }

    /// A value never printed, configured as a reference to a stored secret
    /// (`{{slack.token}}`) and resolved only for the call that needs it.
    pub fn secret(name: impl Into<String>, description: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Secret, description)
    }

    /// The field must be given at registration (unless it has a default).
    #[must_use]
    pub fn required(mut self) -> Self {
        self.spec.required = true;
        self
    }

    /// The value used when the field is not given, written as it would be typed
    /// (`3`, `true`, `info`). strata refuses a flavor whose default is not a valid value
    /// of the field's kind.
    #[must_use]
    pub fn default(mut self, value: impl ToString) -> Self {
        self.spec.default = Some(value.to_string());
        self
    }
}

/// The name strata's command line uses for `component_type`: `alerter`,
/// `experiment-tracker`.
pub fn type_name(component_type: ComponentType) -> &'static str {
    match component_type {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_order_kind_and_options() {
        let info = Info::new("x", ComponentType::StepOperator)
            .version("1.2.3")
            .description("d")
            .field(Field::text("a", "A.").required())
            .field(Field::integer("b", "B.").default(7))
            .field(Field::float("c", "C."))
            .field(Field::boolean("d", "D.").default(true))
            .field(Field::path("e", "E."))
            .field(Field::url("f", "F."))
            .field(Field::secret("g", "G.").required())
            .build();
        assert_eq!(info.name, "x");
        assert_eq!(info.version, "1.2.3");
        assert_eq!(info.description, "d");
        assert!(info.component_type == ComponentType::StepOperator);
        let kinds: Vec<FieldKind> = info.config.iter().map(|f| f.kind).collect();
        assert!(
            kinds
                == [
                    FieldKind::Text,
                    FieldKind::Integer,
                    FieldKind::Float,
                    FieldKind::Boolean,
                    FieldKind::Path,
                    FieldKind::Url,
                    FieldKind::Secret,
                ]
        );
        let required: Vec<bool> = info.config.iter().map(|f| f.required).collect();
        assert_eq!(required, [true, false, false, false, false, false, true]);
        assert_eq!(info.config[1].default.as_deref(), Some("7"));
        assert_eq!(info.config[3].default.as_deref(), Some("true"));
        assert_eq!(info.config[0].description, "A.");
    }

    #[test]
    fn schemes_and_requirements() {
        let info = Info::new("x", ComponentType::Alerter)
            .schemes(["", "s3"])
            .requires(ComponentType::SecretsManager, "tokens")
            .refuses_flavor(ComponentType::Orchestrator, "remote", "local only")
            .build();
        assert_eq!(info.supported_schemes, ["", "s3"]);
        assert_eq!(info.version, "unversioned");
        assert_eq!(info.requirements.len(), 2);
        assert!(info.requirements[0].kind == RequirementKind::Requires);
        assert_eq!(info.requirements[0].flavor, None);
        assert!(info.requirements[1].kind == RequirementKind::Refuses);
        assert_eq!(info.requirements[1].flavor.as_deref(), Some("remote"));
        assert_eq!(info.requirements[1].reason, "local only");
        assert!(info.origins.is_empty());
    }

    #[test]
    fn origins_are_kept_in_order() {
        let info = Info::new("x", ComponentType::ContainerRegistry)
            .origin("https://auth.docker.io")
            .origin("https://registry-1.docker.io")
            .build();
        assert_eq!(
            info.origins,
            ["https://auth.docker.io", "https://registry-1.docker.io"]
        );
    }

    #[test]
    fn type_names_are_the_command_line_ones() {
        assert_eq!(type_name(ComponentType::Alerter), "alerter");
        assert_eq!(type_name(ComponentType::ArtifactStore), "artifact-store");
        assert_eq!(
            type_name(ComponentType::ExperimentTracker),
            "experiment-tracker"
        );
    }
}
