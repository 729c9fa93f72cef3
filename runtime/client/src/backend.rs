//! [`Backend`]: every operation a front end (the CLI, a program using [`crate::Client`])
//! asks of a strata home, whoever serves it. Two implement it: the [`Service`] opened in
//! this process (embedded), and [`super::remote::Remote`], which sends each operation
//! to a daemon as a call of its REST API. The CLI renders what either returns, so its
//! output does not depend on which one served it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::model::{ComponentType, FlavorRecord, LimitOverrides};
use crate::service::{AccessGrant, AuditEntry, NewToken, Role, TokenView, UserView, WhoAmI};
use crate::service::{
    ArtifactEntry, ArtifactView, BackupReport, ComponentView, ConnectorCheck, ConnectorView,
    FlavorDetail, FlavorOptions, FlavorView, ImportReport, InitReport, Installed, IntegrationView,
    Pipeline, PostReport, Progress, RunOptions, RunReport, RunSummary, SecretView, Service,
    StackExport, StackView, StepLog, Watch,
};

/// Components of a stack, by type.
pub type Members = BTreeMap<ComponentType, Vec<String>>;

/// Every operation on a home. Paths are the caller's: a front end makes them absolute
/// before it asks (a daemon has no working directory of the caller's).
pub trait Backend: Send + Sync {
    fn init(&self) -> Result<InitReport>;

    fn stack_list(&self) -> Result<Vec<StackView>>;
    /// `None`: the active stack.
    fn stack_describe(&self, name: Option<&str>) -> Result<StackView>;
    /// The active stack's name.
    fn stack_get(&self) -> Result<String>;
    fn stack_set(&self, name: &str) -> Result<StackView>;
    fn stack_register(
        &self,
        name: &str,
        components: Members,
        set_active: bool,
    ) -> Result<StackView>;
    fn stack_update(&self, name: &str, components: Members) -> Result<StackView>;
    /// Takes components out of a stack; an empty list takes every one of that type.
    fn stack_remove_component(&self, name: &str, components: Members) -> Result<StackView>;
    fn stack_rename(&self, name: &str, new_name: &str) -> Result<StackView>;
    fn stack_copy(&self, name: &str, new_name: &str) -> Result<StackView>;
    fn stack_delete(&self, name: &str) -> Result<()>;
    /// Deletes the stack and the components no other stack uses; returns those.
    fn stack_delete_recursive(&self, name: &str) -> Result<Vec<String>>;
    fn stack_export(&self, name: &str) -> Result<StackExport>;
    fn stack_import(
        &self,
        export: &StackExport,
        name: Option<&str>,
        force: bool,
    ) -> Result<ImportReport>;
    /// Brings a stack up, reporting each component's steps to `on` as they happen.
    fn stack_up(&self, name: Option<&str>, on: &mut dyn FnMut(Progress)) -> Result<StackView>;
    fn stack_down(
        &self,
        name: Option<&str>,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<StackView>;

    fn component_list(&self, t: ComponentType) -> Result<Vec<ComponentView>>;
    /// `live`: also ask the flavor for its status.
    fn component_describe(&self, t: ComponentType, name: &str, live: bool)
    -> Result<ComponentView>;
    fn component_register(
        &self,
        t: ComponentType,
        name: &str,
        flavor: &str,
        config: BTreeMap<String, String>,
        limits: LimitOverrides,
    ) -> Result<ComponentView>;
    fn component_update(
        &self,
        t: ComponentType,
        name: &str,
        changes: BTreeMap<String, String>,
        limits: LimitOverrides,
    ) -> Result<ComponentView>;
    fn component_remove_attribute(
        &self,
        t: ComponentType,
        name: &str,
        key: &str,
    ) -> Result<ComponentView>;
    fn component_rename(
        &self,
        t: ComponentType,
        name: &str,
        new_name: &str,
    ) -> Result<ComponentView>;
    fn component_copy(&self, t: ComponentType, name: &str, new_name: &str)
    -> Result<ComponentView>;
    fn component_delete(&self, t: ComponentType, name: &str) -> Result<()>;
    fn component_up(
        &self,
        t: ComponentType,
        name: &str,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()>;
    fn component_down(
        &self,
        t: ComponentType,
        name: &str,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()>;

    /// `None`: the flavors of every type.
    fn flavor_list(&self, t: Option<ComponentType>) -> Result<Vec<FlavorView>>;
    fn flavor_describe(&self, t: ComponentType, name: &str) -> Result<FlavorDetail>;
    /// Registers the `.wasm` at `path` (absolute, on the machine that serves the home).
    fn flavor_register(
        &self,
        t: ComponentType,
        path: &Path,
        opts: FlavorOptions,
    ) -> Result<FlavorRecord>;
    fn flavor_delete(&self, t: ComponentType, name: &str) -> Result<()>;

    fn secret_list(&self) -> Result<Vec<SecretView>>;
    fn secret_create(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView>;
    fn secret_get(&self, name: &str, reveal: bool) -> Result<SecretView>;
    fn secret_update(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView>;
    fn secret_delete(&self, name: &str) -> Result<()>;
    /// Renames a secret; returns the components whose references were rewritten.
    fn secret_rename(&self, name: &str, new_name: &str) -> Result<Vec<String>>;

    fn connector_list(&self) -> Result<Vec<ConnectorView>>;
    fn connector_register(
        &self,
        name: &str,
        kind: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView>;
    fn connector_describe(&self, name: &str) -> Result<ConnectorView>;
    fn connector_update(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView>;
    fn connector_rename(&self, name: &str, new_name: &str) -> Result<ConnectorView>;
    fn connector_delete(&self, name: &str) -> Result<()>;
    fn connector_verify(&self, name: &str) -> Result<ConnectorCheck>;

    /// Sends `message` through the alerter `name` (`params`: title, level, …).
    fn alerter_post(
        &self,
        name: &str,
        message: &str,
        params: BTreeMap<String, String>,
    ) -> Result<PostReport>;

    /// Writes `data` to `path` in the artifact store `store`.
    fn artifact_put(
        &self,
        store: &str,
        path: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<ArtifactView>;
    /// The whole file at `path` in the artifact store `store`.
    fn artifact_get(&self, store: &str, path: &str) -> Result<Vec<u8>>;
    fn artifact_list(&self, store: &str, path: &str) -> Result<Vec<ArtifactEntry>>;
    fn artifact_stat(&self, store: &str, path: &str) -> Result<ArtifactView>;
    fn artifact_remove(&self, store: &str, path: &str, recursive: bool) -> Result<()>;

    fn integration_list(&self) -> Result<Vec<IntegrationView>>;
    /// `name_or_dir`: an integration's name, or the absolute path of its directory.
    fn integration_install(&self, name_or_dir: &str, replace: bool) -> Result<Vec<Installed>>;
    /// Returns what was deleted.
    fn integration_uninstall(&self, name: &str) -> Result<Vec<String>>;

    /// Runs `pipeline` on the active stack, telling `watch` what happens as it happens.
    /// A run whose step failed is a report with status `failed`, not an error.
    fn pipeline_run(
        &self,
        pipeline: &Pipeline,
        params: BTreeMap<String, String>,
        opts: &RunOptions,
        watch: Watch<'_>,
    ) -> Result<RunReport>;
    /// The runs, newest first.
    fn run_list(&self, pipeline: Option<&str>) -> Result<Vec<RunSummary>>;
    /// The run `id` (or the one whose id starts with it).
    fn run_get(&self, id: &str) -> Result<RunReport>;
    /// What the run's steps (or `step`) wrote, from byte `from`.
    fn run_logs(&self, id: &str, step: Option<&str>, from: u64) -> Result<Vec<StepLog>>;
    /// Asks a run under way to stop.
    fn run_cancel(&self, id: &str) -> Result<RunReport>;
    /// Deletes a run's record, logs and (unless `keep_artifacts`) artifacts.
    fn run_delete(&self, id: &str, keep_artifacts: bool) -> Result<RunReport>;

    /// `file`: absolute, on the machine that serves the home.
    fn backup(&self, file: &Path, force: bool) -> Result<BackupReport>;
    fn restore(&self, file: &Path, force: bool) -> Result<BackupReport>;

    // A team server's users, tokens, grants and audit log (a local home refuses them).
    fn whoami(&self) -> Result<WhoAmI>;
    /// Creates a user and its first token (shown once).
    fn user_create(&self, name: &str, role: Role) -> Result<(UserView, NewToken)>;
    fn user_list(&self) -> Result<Vec<UserView>>;
    fn user_set_role(&self, name: &str, role: Role) -> Result<UserView>;
    fn user_delete(&self, name: &str) -> Result<()>;
    /// A new token for `user` (`None`: the caller).
    fn token_create(&self, user: Option<&str>, name: &str) -> Result<NewToken>;
    fn token_list(&self, user: Option<&str>) -> Result<Vec<TokenView>>;
    fn token_revoke(&self, id: &str) -> Result<TokenView>;
    /// `kind`: `stack` or `connector`.
    fn grant(&self, kind: &str, name: &str, user: &str, role: Role) -> Result<AccessGrant>;
    fn revoke(&self, kind: &str, name: &str, user: &str) -> Result<()>;
    fn grants(&self, kind: &str, name: &str) -> Result<Vec<AccessGrant>>;
    fn audit(&self, since_ms: u64, limit: usize) -> Result<Vec<AuditEntry>>;

    /// What the operations since the last call warned about, for the front end to show.
    fn take_warnings(&self) -> Vec<String>;
    /// What flavors logged during the operations since the last call.
    fn take_logs(&self) -> Vec<String>;
}

/// The embedded backend: the service of a home opened in this process.
impl Backend for Service {
    fn init(&self) -> Result<InitReport> {
        Service::init(self)
    }
    fn stack_list(&self) -> Result<Vec<StackView>> {
        Service::stack_list(self)
    }
    fn stack_describe(&self, name: Option<&str>) -> Result<StackView> {
        Service::stack_describe(self, name)
    }
    fn stack_get(&self) -> Result<String> {
        Service::stack_get(self)
    }
    fn stack_set(&self, name: &str) -> Result<StackView> {
        Service::stack_set(self, name)
    }
    fn stack_register(&self, name: &str, c: Members, set_active: bool) -> Result<StackView> {
        Service::stack_register(self, name, c, set_active)
    }
    fn stack_update(&self, name: &str, c: Members) -> Result<StackView> {
        Service::stack_update(self, name, c)
    }
    fn stack_remove_component(&self, name: &str, c: Members) -> Result<StackView> {
        Service::stack_remove_component(self, name, c)
    }
    fn stack_rename(&self, name: &str, new_name: &str) -> Result<StackView> {
        Service::stack_rename(self, name, new_name)
    }
    fn stack_copy(&self, name: &str, new_name: &str) -> Result<StackView> {
        Service::stack_copy(self, name, new_name)
    }
    fn stack_delete(&self, name: &str) -> Result<()> {
        Service::stack_delete(self, name)
    }
    fn stack_delete_recursive(&self, name: &str) -> Result<Vec<String>> {
        Service::stack_delete_recursive(self, name)
    }
    fn stack_export(&self, name: &str) -> Result<StackExport> {
        Service::stack_export(self, name)
    }
    fn stack_import(
        &self,
        e: &StackExport,
        name: Option<&str>,
        force: bool,
    ) -> Result<ImportReport> {
        Service::stack_import(self, e, name, force)
    }
    fn stack_up(&self, name: Option<&str>, on: &mut dyn FnMut(Progress)) -> Result<StackView> {
        Service::stack_up(self, name, on)
    }
    fn stack_down(
        &self,
        name: Option<&str>,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<StackView> {
        Service::stack_down(self, name, force, on)
    }
    fn component_list(&self, t: ComponentType) -> Result<Vec<ComponentView>> {
        Service::component_list(self, t)
    }
    fn component_describe(
        &self,
        t: ComponentType,
        name: &str,
        live: bool,
    ) -> Result<ComponentView> {
        Service::component_describe(self, t, name, live)
    }
    fn component_register(
        &self,
        t: ComponentType,
        name: &str,
        flavor: &str,
        config: BTreeMap<String, String>,
        limits: LimitOverrides,
    ) -> Result<ComponentView> {
        Service::component_register(self, t, name, flavor, config, limits)
    }
    fn component_update(
        &self,
        t: ComponentType,
        name: &str,
        changes: BTreeMap<String, String>,
        limits: LimitOverrides,
    ) -> Result<ComponentView> {
        Service::component_update(self, t, name, changes, limits)
    }
    fn component_remove_attribute(
        &self,
        t: ComponentType,
        name: &str,
        key: &str,
    ) -> Result<ComponentView> {
        Service::component_remove_attribute(self, t, name, key)
    }
    fn component_rename(
        &self,
        t: ComponentType,
        name: &str,
        new_name: &str,
    ) -> Result<ComponentView> {
        Service::component_rename(self, t, name, new_name)
    }
    fn component_copy(
        &self,
        t: ComponentType,
        name: &str,
        new_name: &str,
    ) -> Result<ComponentView> {
        Service::component_copy(self, t, name, new_name)
    }
    fn component_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        Service::component_delete(self, t, name)
    }
    fn component_up(
        &self,
        t: ComponentType,
        name: &str,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        Service::component_up(self, t, name, on)
    }
    fn component_down(
        &self,
        t: ComponentType,
        name: &str,
        force: bool,
        on: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        Service::component_down(self, t, name, force, on)
    }
    fn flavor_list(&self, t: Option<ComponentType>) -> Result<Vec<FlavorView>> {
        Service::flavor_list(self, t)
    }
    fn flavor_describe(&self, t: ComponentType, name: &str) -> Result<FlavorDetail> {
        Service::flavor_describe(self, t, name)
    }
    fn flavor_register(
        &self,
        t: ComponentType,
        path: &Path,
        opts: FlavorOptions,
    ) -> Result<FlavorRecord> {
        Service::flavor_register(self, Some(t), path, opts).map(|d| d.record)
    }
    fn flavor_delete(&self, t: ComponentType, name: &str) -> Result<()> {
        Service::flavor_delete(self, t, name)
    }
    fn secret_list(&self) -> Result<Vec<SecretView>> {
        Service::secret_list(self)
    }
    fn secret_create(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView> {
        Service::secret_create(self, name, values)
    }
    fn secret_get(&self, name: &str, reveal: bool) -> Result<SecretView> {
        Service::secret_get(self, name, reveal)
    }
    fn secret_update(&self, name: &str, values: BTreeMap<String, String>) -> Result<SecretView> {
        Service::secret_update(self, name, values)
    }
    fn secret_delete(&self, name: &str) -> Result<()> {
        Service::secret_delete(self, name)
    }
    fn secret_rename(&self, name: &str, new_name: &str) -> Result<Vec<String>> {
        Service::secret_rename(self, name, new_name)
    }
    fn connector_list(&self) -> Result<Vec<ConnectorView>> {
        Service::connector_list(self)
    }
    fn connector_register(
        &self,
        name: &str,
        kind: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        Service::connector_register(self, name, kind, values)
    }
    fn connector_describe(&self, name: &str) -> Result<ConnectorView> {
        Service::connector_describe(self, name)
    }
    fn connector_update(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        Service::connector_update(self, name, values)
    }
    fn connector_rename(&self, name: &str, new_name: &str) -> Result<ConnectorView> {
        Service::connector_rename(self, name, new_name)
    }
    fn connector_delete(&self, name: &str) -> Result<()> {
        Service::connector_delete(self, name)
    }
    fn connector_verify(&self, name: &str) -> Result<ConnectorCheck> {
        Service::connector_verify(self, name)
    }
    fn alerter_post(
        &self,
        name: &str,
        message: &str,
        params: BTreeMap<String, String>,
    ) -> Result<PostReport> {
        Service::alerter_post(self, name, message, params)
    }
    fn artifact_put(
        &self,
        store: &str,
        path: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<ArtifactView> {
        Service::artifact_put(self, store, path, data, overwrite)
    }
    fn artifact_get(&self, store: &str, path: &str) -> Result<Vec<u8>> {
        Service::artifact_get(self, store, path)
    }
    fn artifact_list(&self, store: &str, path: &str) -> Result<Vec<ArtifactEntry>> {
        Service::artifact_list(self, store, path)
    }
    fn artifact_stat(&self, store: &str, path: &str) -> Result<ArtifactView> {
        Service::artifact_stat(self, store, path)
    }
    fn artifact_remove(&self, store: &str, path: &str, recursive: bool) -> Result<()> {
        Service::artifact_remove(self, store, path, recursive)
    }
    fn integration_list(&self) -> Result<Vec<IntegrationView>> {
        Service::integration_list(self)
    }
    fn integration_install(&self, name_or_dir: &str, replace: bool) -> Result<Vec<Installed>> {
        Service::integration_install(self, name_or_dir, replace)
    }
    fn integration_uninstall(&self, name: &str) -> Result<Vec<String>> {
        Service::integration_uninstall(self, name)
    }
    fn pipeline_run(
        &self,
        p: &Pipeline,
        params: BTreeMap<String, String>,
        opts: &RunOptions,
        watch: Watch<'_>,
    ) -> Result<RunReport> {
        Service::pipeline_run_with(self, p, params, opts, watch)
    }
    fn run_list(&self, pipeline: Option<&str>) -> Result<Vec<RunSummary>> {
        Service::run_list(self, pipeline)
    }
    fn run_get(&self, id: &str) -> Result<RunReport> {
        Service::run_get(self, id)
    }
    fn run_logs(&self, id: &str, step: Option<&str>, from: u64) -> Result<Vec<StepLog>> {
        Service::run_logs(self, id, step, from)
    }
    fn run_cancel(&self, id: &str) -> Result<RunReport> {
        Service::run_cancel(self, id, "cancelled with Ctrl-C")
    }
    fn run_delete(&self, id: &str, keep_artifacts: bool) -> Result<RunReport> {
        Service::run_delete(self, id, keep_artifacts)
    }
    fn backup(&self, file: &Path, force: bool) -> Result<BackupReport> {
        Service::backup(self, file, force)
    }
    fn restore(&self, file: &Path, force: bool) -> Result<BackupReport> {
        Service::restore(self, file, force)
    }
    fn whoami(&self) -> Result<WhoAmI> {
        Service::whoami(self)
    }
    fn user_create(&self, name: &str, role: Role) -> Result<(UserView, NewToken)> {
        Service::user_create(self, name, role)
    }
    fn user_list(&self) -> Result<Vec<UserView>> {
        Service::user_list(self)
    }
    fn user_set_role(&self, name: &str, role: Role) -> Result<UserView> {
        Service::user_set_role(self, name, role)
    }
    fn user_delete(&self, name: &str) -> Result<()> {
        Service::user_delete(self, name)
    }
    fn token_create(&self, user: Option<&str>, name: &str) -> Result<NewToken> {
        Service::token_create(self, user, name)
    }
    fn token_list(&self, user: Option<&str>) -> Result<Vec<TokenView>> {
        Service::token_list(self, user)
    }
    fn token_revoke(&self, id: &str) -> Result<TokenView> {
        Service::token_revoke(self, id)
    }
    fn grant(&self, kind: &str, name: &str, user: &str, role: Role) -> Result<AccessGrant> {
        Service::grant(self, kind, name, user, role)
    }
    fn revoke(&self, kind: &str, name: &str, user: &str) -> Result<()> {
        Service::revoke(self, kind, name, user)
    }
    fn grants(&self, kind: &str, name: &str) -> Result<Vec<AccessGrant>> {
        Service::grants_of(self, kind, name)
    }
    fn audit(&self, since_ms: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        Service::audit_list(self, since_ms, limit)
    }
    fn take_warnings(&self) -> Vec<String> {
        Service::take_warnings(self)
    }
    fn take_logs(&self) -> Vec<String> {
        Service::take_logs(self)
    }
}
