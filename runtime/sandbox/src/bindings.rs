//! The one `bindgen!` of strata's host, from the `host-view` world (every interface a
//! flavor may export), and the conversions between its types and [`crate::model`].
//! Nothing else in strata names a generated type outside the sandbox.

use crate::model::{self, FieldKind};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "strata:flavor/host-view",
});

pub use self::strata::flavor::types;
pub use exports::strata::flavor::{
    alerter, artifact_store, experiment_tracker, lifecycle, orchestrator,
};

/// The WIT package version this runtime implements, and the one flavors are built
/// against today.
pub const WIT_VERSION: &str = "0.2.0";
/// Every version of the package this runtime runs, newest first. 0.1.0 differs from
/// 0.2.0 only in `flavor-info` (no `origins`) and in its worlds (no `wasi:http`).
pub const WIT_VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];
pub const LIFECYCLE: &str = "strata:flavor/lifecycle";
pub const ARTIFACT_STORE: &str = "strata:flavor/artifact-store";
pub const ORCHESTRATOR: &str = "strata:flavor/orchestrator";
/// New in 0.2.0: a 0.1.0 flavor never exports it.
pub const ALERTER: &str = "strata:flavor/alerter";
/// New in 0.2.0: a 0.1.0 flavor never exports it.
pub const EXPERIMENT_TRACKER: &str = "strata:flavor/experiment-tracker";

impl From<types::ComponentType> for model::ComponentType {
    fn from(t: types::ComponentType) -> Self {
        use model::ComponentType as M;
        use types::ComponentType as W;
        match t {
            W::Orchestrator => M::Orchestrator,
            W::ArtifactStore => M::ArtifactStore,
            W::MetadataStore => M::MetadataStore,
            W::ContainerRegistry => M::ContainerRegistry,
            W::SecretsManager => M::SecretsManager,
            W::StepOperator => M::StepOperator,
            W::ModelDeployer => M::ModelDeployer,
            W::FeatureStore => M::FeatureStore,
            W::ExperimentTracker => M::ExperimentTracker,
            W::Alerter => M::Alerter,
            W::DataValidator => M::DataValidator,
            W::ImageBuilder => M::ImageBuilder,
            W::Annotator => M::Annotator,
            W::ModelRegistry => M::ModelRegistry,
            W::Deployer => M::Deployer,
        }
    }
}

impl From<types::FieldKind> for FieldKind {
    fn from(k: types::FieldKind) -> Self {
        match k {
            types::FieldKind::Text => FieldKind::Text,
            types::FieldKind::Integer => FieldKind::Integer,
            types::FieldKind::Float => FieldKind::Float,
            types::FieldKind::Boolean => FieldKind::Boolean,
            types::FieldKind::Path => FieldKind::Path,
            types::FieldKind::Url => FieldKind::Url,
            types::FieldKind::Secret => FieldKind::Secret,
        }
    }
}
