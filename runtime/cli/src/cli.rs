//! The `strata` command line: argument parsing (this file), rendering ([`render`]),
//! questions on the terminal (`prompt`) and dispatch ([`run`]). No rule lives here:
//! every operation is a call of a [`crate::client::Backend`] (the service in this process,
//! or a daemon's REST API), and the CLI renders what it answers.

pub mod daemon;
mod prompt;
pub mod render;
pub mod run;
pub mod team;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::ComponentType;

const ABOUT: &str = "Run MLOps stacks whose flavors are sandboxed WebAssembly components";
const LONG_ABOUT: &str = "\
strata manages MLOps stacks the way ZenML does: a stack is a set of components
(orchestrator, artifact store, container registry, …), each an instance of a
flavor, with a lifecycle (up: provision and resume; down: suspend, and with
--force deprovision). Every flavor is a WebAssembly component that runs in a
sandbox: it sees only the directories its configuration names.

A new home starts with an active `default` stack: a local orchestrator and a local
artifact store. Try:

  strata stack list
  strata artifact-store flavor list
  strata artifact-store register my_store --flavor=local --path=/tmp/my_store
  strata stack register my_stack -o default -a my_store --set
  strata stack up";

#[derive(Parser, Debug)]
#[command(name = "strata", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
pub struct Cli {
    /// strata's home directory [default: $STRATA_HOME, else ~/.local/share/strata]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// How lists and descriptions are printed
    #[arg(long, global = true, value_enum, default_value_t = Format::Table, env = "STRATA_OUTPUT", value_name = "FORMAT")]
    pub output: Format,

    /// Also print what flavors log during each call
    #[arg(long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

// Parsed once per process; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create strata's home with an active `default` stack (any command does this on a new home)
    Init,
    /// Register, inspect, activate and bring up stacks
    #[command(subcommand)]
    Stack(StackCmd),
    /// Manage orchestrators: they run the steps of your pipelines (required in a stack)
    #[command(subcommand)]
    Orchestrator(ComponentCmd),
    /// Manage artifact stores, and the files in one: they keep what your pipelines
    /// produce (required in a stack)
    #[command(subcommand)]
    ArtifactStore(ArtifactStoreCmd),
    /// Manage metadata stores: they track pipeline and step executions
    #[command(subcommand)]
    MetadataStore(ComponentCmd),
    /// Manage container registries: they store your container images
    #[command(subcommand)]
    ContainerRegistry(ComponentCmd),
    /// Manage secrets managers: they hold secrets for other components
    #[command(subcommand)]
    SecretsManager(ComponentCmd),
    /// Manage step operators: they run single steps in specialised environments
    #[command(subcommand)]
    StepOperator(ComponentCmd),
    /// Manage model deployers: they serve models online
    #[command(subcommand)]
    ModelDeployer(ComponentCmd),
    /// Manage feature stores: they manage your features
    #[command(subcommand)]
    FeatureStore(ComponentCmd),
    /// Manage experiment trackers: they track your experiments
    #[command(subcommand)]
    ExperimentTracker(ComponentCmd),
    /// Manage alerters, and send a message through one: they send alerts through a channel
    #[command(subcommand)]
    Alerter(AlerterCmd),
    /// Manage data validators: they validate data and models
    #[command(subcommand)]
    DataValidator(ComponentCmd),
    /// Manage image builders: they build container images
    #[command(subcommand)]
    ImageBuilder(ComponentCmd),
    /// Manage annotators: they label and annotate data
    #[command(subcommand)]
    Annotator(ComponentCmd),
    /// Manage model registries: they register and version models
    #[command(subcommand)]
    ModelRegistry(ComponentCmd),
    /// Manage deployers: they deploy pipelines as long-running HTTP services
    #[command(subcommand)]
    Deployer(ComponentCmd),
    /// List the flavors of every component type
    #[command(subcommand)]
    Flavor(AllFlavorsCmd),
    /// Install bundles of flavors: directories of `.wasm` components
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// Store secrets that components reference as `{{name.key}}`
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Credentials for a service (AWS, a bearer token, a user and password), added by
    /// strata to the requests of the components bound to it: their flavors never see them
    #[command(subcommand)]
    ServiceConnector(ConnectorCmd),
    /// Run a pipeline on the active stack
    #[command(subcommand)]
    Pipeline(PipelineCmd),
    /// Write the whole store (stacks, components, flavors, states, sealed secrets) to FILE
    Backup {
        file: PathBuf,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Replace the whole store with a backup, after checking every record in it
    Restore {
        file: PathBuf,
        /// Replace a home that holds more than what `init` creates
        #[arg(long)]
        force: bool,
    },
    /// Run a local daemon that holds this home and serves it over HTTP on 127.0.0.1
    /// (the REST API under /api/v1); while it runs, every strata command goes through it
    #[command(subcommand)]
    Daemon(DaemonCmd),
    /// Open the dashboard in your browser: stacks with up/down, components, flavors,
    /// pipeline runs with their logs, connectors. For this home, a one-time link to its
    /// daemon (started if none runs); when logged in to a team server, its address
    Dashboard {
        /// Print the link only; do not start a browser
        #[arg(long)]
        no_open: bool,
    },
    /// Run a team server: many users, one MySQL/MariaDB database, roles per stack
    #[command(subcommand)]
    Server(team::ServerCmd),
    /// Connect this CLI to a team server: every command then goes to it (except one
    /// given --home or STRATA_HOME)
    Login {
        /// The server's address, http://HOST:PORT or https://HOST:PORT
        url: String,
        /// Your token (`strata server token create`); asked for without echo when not
        /// given here or in STRATA_TOKEN
        #[arg(long)]
        token: Option<String>,
        /// For an https:// server whose certificate is not signed by a public authority:
        /// the PEM certificate (or its issuer's) to trust instead; kept with the login
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
    },
    /// Forget the team server: commands use the local home again
    Logout,
    /// Who you are on the team server you are logged in to: user, role, grants
    Whoami,
    /// Print a shell completion script: `strata completion bash > /etc/bash_completion.d/strata`
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The component type a command is about, for the per-type commands.
    pub fn component(&self) -> Option<(ComponentType, &ComponentCmd)> {
        use ComponentType as T;
        let (t, c) = match self {
            Command::Orchestrator(c) => (T::Orchestrator, c),
            Command::ArtifactStore(ArtifactStoreCmd::Common(c)) => (T::ArtifactStore, c),
            Command::MetadataStore(c) => (T::MetadataStore, c),
            Command::ContainerRegistry(c) => (T::ContainerRegistry, c),
            Command::SecretsManager(c) => (T::SecretsManager, c),
            Command::StepOperator(c) => (T::StepOperator, c),
            Command::ModelDeployer(c) => (T::ModelDeployer, c),
            Command::FeatureStore(c) => (T::FeatureStore, c),
            Command::ExperimentTracker(c) => (T::ExperimentTracker, c),
            Command::Alerter(AlerterCmd::Common(c)) => (T::Alerter, c),
            Command::DataValidator(c) => (T::DataValidator, c),
            Command::ImageBuilder(c) => (T::ImageBuilder, c),
            Command::Annotator(c) => (T::Annotator, c),
            Command::ModelRegistry(c) => (T::ModelRegistry, c),
            Command::Deployer(c) => (T::Deployer, c),
            _ => return None,
        };
        Some((t, c))
    }
}

/// `strata daemon …`.
#[derive(Subcommand, Debug)]
pub enum DaemonCmd {
    /// Start the daemon for this home, in the background unless --foreground. It writes
    /// its address, pid and bearer token to STRATA_HOME/daemon.json (readable by you only)
    Start {
        /// The port on 127.0.0.1; 0 picks a free one (see `daemon status`)
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Run in this terminal and log to it; Ctrl-C stops it
        #[arg(long)]
        foreground: bool,
        /// On stop, how long calls into flavors under way may take to finish before they
        /// are recorded as interrupted
        #[arg(long, default_value_t = 10_000, value_name = "MS")]
        grace_ms: u64,
    },
    /// Stop the daemon: no new requests; calls under way get the grace period to finish
    Stop,
    /// Whether a daemon serves this home: address, pid, uptime, memory, calls under way
    Status,
    /// Print the end of the log of the daemon started in the background
    Logs {
        /// How many lines
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

/// The commands every component type has.
#[derive(Subcommand, Debug)]
pub enum ComponentCmd {
    /// List, describe, register and delete the flavors of this type
    #[command(subcommand)]
    Flavor(FlavorCmd),
    /// Register a component: `register NAME --flavor=FLAVOR --KEY=VALUE …`
    #[command(
        after_help = "Configuration is given as --KEY=VALUE (or --KEY VALUE), one per field the\nflavor declares; `flavor describe FLAVOR` lists them. Keys may use `-` or `_`.\nRelative paths are taken from the current directory."
    )]
    Register(RegisterArgs),
    /// Change configuration values: `update NAME --KEY=VALUE …` (validated as a whole)
    Update {
        name: String,
        /// New values: --KEY=VALUE …
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE"
        )]
        config: Vec<String>,
    },
    /// Remove a configuration value, so the field's default applies (not for required fields)
    RemoveAttribute { name: String, key: String },
    /// Rename a component (stacks that use it follow)
    Rename { name: String, new_name: String },
    /// Register a new component with the configuration of an existing one
    Copy { name: String, new_name: String },
    /// List the registered components of this type
    List,
    /// Show a component: flavor, configuration, grants, lifecycle phase, live status
    Describe {
        name: String,
        /// Do not ask the flavor for its live status
        #[arg(long)]
        no_status: bool,
    },
    /// Delete a component that no stack uses and that is not provisioned
    Delete { name: String },
    /// Provision (if needed) and resume a component
    Up { name: String },
    /// Suspend a component; with --force also deprovision it
    Down {
        name: String,
        /// Also deprovision: remove the resources the component created
        #[arg(long)]
        force: bool,
    },
}

/// `strata artifact-store …`: what every type has, and the files in a store, through
/// its flavor (the calls a pipeline's steps make).
#[derive(Subcommand, Debug)]
pub enum ArtifactStoreCmd {
    #[command(flatten)]
    Common(ComponentCmd),
    /// Copy a local file into a store: `put STORE FILE [PATH]` (PATH defaults to the file's name)
    Put {
        /// The artifact store (`strata artifact-store list`)
        store: String,
        /// The local file (`-`: standard input)
        file: PathBuf,
        /// Where in the store: `models/v1/model.pkl`
        path: Option<String>,
        /// Replace the file if it exists
        #[arg(long)]
        overwrite: bool,
    },
    /// Copy a file out of a store: `get STORE PATH [FILE]` (FILE `-`, or none: standard output)
    Get {
        /// The artifact store
        store: String,
        /// The file in the store: `models/v1/model.pkl`
        path: String,
        /// The local file to write (refused if it exists, unless --overwrite)
        file: Option<PathBuf>,
        /// Replace the local file if it exists
        #[arg(long)]
        overwrite: bool,
    },
    /// List a directory of a store (the root if no PATH)
    Ls {
        /// The artifact store
        store: String,
        /// A directory in the store
        path: Option<String>,
    },
    /// Size and time of a file in a store
    Stat {
        /// The artifact store
        store: String,
        /// The file or directory in the store
        path: String,
    },
    /// Remove a file from a store; a directory with --recursive
    Rm {
        /// The artifact store
        store: String,
        /// The file or directory in the store
        path: String,
        /// Also a directory and everything in it
        #[arg(short, long)]
        recursive: bool,
    },
}

/// `strata alerter …`: what every type has, and `post`.
#[derive(Subcommand, Debug)]
pub enum AlerterCmd {
    #[command(flatten)]
    Common(ComponentCmd),
    /// Send a message through an alerter: `post NAME "the text" [--param title=…]`
    #[command(
        after_help = "Parameters shape the message; a flavor ignores those it does not know:\n  title, level (info, success, warning, error), pipeline, run-id, step, stack, url\nExample: strata alerter post team \"nightly training failed\" --param level=error --param url=https://ci.example/42"
    )]
    Post {
        /// The alerter (`strata alerter list`)
        name: String,
        /// The text to send
        message: String,
        /// A parameter of the message: --param KEY=VALUE (repeatable)
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The new component's name
    pub name: String,
    /// The flavor to use (see `flavor list`)
    #[arg(short = 'f', long)]
    pub flavor: Option<String>,
    /// Ask for each configuration field in turn
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Configuration: --KEY=VALUE …; also `--timeout-ms N` and `--memory-mb N`, this
    /// component's own deadline and memory cap per call (default: its flavor's)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "--KEY=VALUE"
    )]
    pub config: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum FlavorCmd {
    /// List the flavors of this type
    List,
    /// Show a flavor's configuration fields
    Describe { flavor: String },
    /// Register a flavor from a `.wasm` component
    Register(FlavorRegisterArgs),
    /// Delete a custom flavor that no component uses
    Delete { flavor: String },
}

#[derive(Args, Debug)]
pub struct FlavorRegisterArgs {
    /// The `.wasm` component (built for wasm32-wasip2 against strata's WIT)
    pub path: PathBuf,
    /// Deadline of each call into the flavor, in milliseconds [default: 10000]
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Memory cap of each call into the flavor, in MiB [default: 256]
    #[arg(long, value_name = "MIB")]
    pub memory_mb: Option<u64>,
    /// Replace the code of a custom flavor registered under the same name
    #[arg(long)]
    pub replace: bool,
    /// Accept an extra origin the flavor asks to reach (`flavor describe` of the .wasm's
    /// registration error lists them), e.g. `--allow-origin=https://auth.docker.io`
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum AllFlavorsCmd {
    /// List the flavors of every type
    List,
    /// Make a new flavor project that builds out of the box (`make`, then `make test`)
    New {
        /// The flavor's name: lower case letters, digits, `-` and `_`
        name: String,
        /// Its component type, e.g. alerter, experiment-tracker, step-operator
        #[arg(long = "type", value_name = "TYPE")]
        component_type: String,
        /// The language of the project: rust, python (componentize-py) or js (componentize-js)
        #[arg(long, default_value = "rust", value_name = "LANG")]
        lang: String,
        /// Where to make it [default: ./NAME]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Try a `.wasm` flavor in a throwaway home: register it, register a component with
    /// an example configuration (required fields get example values, or yours), then
    /// up, status, up again, down --force, status. Your own home is not touched.
    Test {
        /// The `.wasm` component to test
        path: PathBuf,
        /// Deadline of each call, in milliseconds [default: 10000]
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// Memory cap of each call, in MiB [default: 256]
        #[arg(long, value_name = "MIB")]
        memory_mb: Option<u64>,
        /// Configuration for the test component: --KEY=VALUE …
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE"
        )]
        config: Vec<String>,
    },
}

/// The components of a stack, one flag per type (ZenML's letters where they are one).
#[derive(Args, Debug, Default)]
pub struct StackComponents {
    /// Orchestrator (required)
    #[arg(short = 'o', long, value_name = "NAME")]
    pub orchestrator: Option<String>,
    /// Artifact store (required)
    #[arg(short = 'a', long, alias = "artifact_store", value_name = "NAME")]
    pub artifact_store: Option<String>,
    /// Metadata store
    #[arg(short = 'm', long, alias = "metadata_store", value_name = "NAME")]
    pub metadata_store: Option<String>,
    /// Container registry
    #[arg(short = 'c', long, alias = "container_registry", value_name = "NAME")]
    pub container_registry: Option<String>,
    /// Secrets manager
    #[arg(short = 'x', long, alias = "secrets_manager", value_name = "NAME")]
    pub secrets_manager: Option<String>,
    /// Step operator (repeat for several)
    #[arg(short = 's', long, alias = "step_operator", value_name = "NAME")]
    pub step_operator: Vec<String>,
    /// Model deployer
    #[arg(short = 'd', long, alias = "model_deployer", value_name = "NAME")]
    pub model_deployer: Option<String>,
    /// Feature store
    #[arg(short = 'f', long, alias = "feature_store", value_name = "NAME")]
    pub feature_store: Option<String>,
    /// Experiment tracker
    #[arg(short = 'e', long, alias = "experiment_tracker", value_name = "NAME")]
    pub experiment_tracker: Option<String>,
    /// Alerter (also `-al`, as in ZenML)
    #[arg(short = 'l', long, value_name = "NAME")]
    pub alerter: Option<String>,
    /// Data validator (also `-dv`, as in ZenML)
    #[arg(short = 'v', long, alias = "data_validator", value_name = "NAME")]
    pub data_validator: Option<String>,
    /// Image builder
    #[arg(short = 'i', long, alias = "image_builder", value_name = "NAME")]
    pub image_builder: Option<String>,
    /// Annotator (also `-an`, as in ZenML)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub annotator: Option<String>,
    /// Model registry
    #[arg(short = 'r', long, alias = "model_registry", value_name = "NAME")]
    pub model_registry: Option<String>,
    /// Deployer
    #[arg(short = 'D', long, value_name = "NAME")]
    pub deployer: Option<String>,
}

impl StackComponents {
    /// The named components by type.
    pub fn by_type(&self) -> std::collections::BTreeMap<ComponentType, Vec<String>> {
        use ComponentType as T;
        let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
        [
            (T::Orchestrator, one(&self.orchestrator)),
            (T::ArtifactStore, one(&self.artifact_store)),
            (T::MetadataStore, one(&self.metadata_store)),
            (T::ContainerRegistry, one(&self.container_registry)),
            (T::SecretsManager, one(&self.secrets_manager)),
            (T::StepOperator, self.step_operator.clone()),
            (T::ModelDeployer, one(&self.model_deployer)),
            (T::FeatureStore, one(&self.feature_store)),
            (T::ExperimentTracker, one(&self.experiment_tracker)),
            (T::Alerter, one(&self.alerter)),
            (T::DataValidator, one(&self.data_validator)),
            (T::ImageBuilder, one(&self.image_builder)),
            (T::Annotator, one(&self.annotator)),
            (T::ModelRegistry, one(&self.model_registry)),
            (T::Deployer, one(&self.deployer)),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

#[derive(Subcommand, Debug)]
pub enum StackCmd {
    /// Register a stack: `stack register NAME -o ORCHESTRATOR -a ARTIFACT_STORE …`
    Register {
        name: String,
        #[command(flatten)]
        components: StackComponents,
        /// Also make it the active stack
        #[arg(long)]
        set: bool,
    },
    /// List the stacks; the active one is marked
    List,
    /// Show a stack's components (default: the active stack)
    Describe { name: Option<String> },
    /// Print the name of the active stack
    Get,
    /// Make a stack the active one
    Set { name: String },
    /// Provision and resume every component of a stack (default: the active one)
    Up { name: Option<String> },
    /// Suspend every component of a stack; with --force also deprovision them
    Down {
        name: Option<String>,
        /// Also deprovision: remove the resources the components created
        #[arg(long)]
        force: bool,
    },
    /// Put other components into a stack: `stack update NAME -a OTHER_STORE …`
    Update {
        name: String,
        #[command(flatten)]
        components: StackComponents,
    },
    /// Take components out of a stack: `stack remove-component NAME --step-operator X …`
    RemoveComponent {
        name: String,
        #[command(flatten)]
        components: StackComponents,
    },
    /// Rename a stack
    Rename { name: String, new_name: String },
    /// Register a new stack with the components of an existing one
    Copy { name: String, new_name: String },
    /// Write a stack to a YAML file: its components, their flavors pinned by sha256, and
    /// their configuration (secret references left as `{{name.key}}`)
    Export {
        name: String,
        /// Where to write it (default: NAME.yaml; `-` for standard output)
        file: Option<PathBuf>,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Register a stack from a file written by `stack export`
    Import {
        file: PathBuf,
        /// The new stack's name (default: the name in the file)
        name: Option<String>,
        /// Use a registered flavor even when its code (sha256) differs from the file's
        #[arg(long)]
        force: bool,
    },
    /// Delete a stack (its components stay, unless -r)
    Delete {
        name: String,
        /// Also delete the stack's components that no other stack uses (never the defaults)
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// On a team server (admins): restrict the stack to the users granted `member` (and
    /// admins) for changes, `up` and `down`; `viewer` lets a user read it
    Grant {
        /// The stack
        stack: String,
        /// The user granted
        user: String,
        /// member (may change it, bring it up and down) or viewer (may read it)
        #[arg(long, default_value = "member", value_parser = team::parse_stack_role)]
        role: crate::service::Role,
    },
    /// On a team server: take back a user's grant on the stack
    Revoke {
        /// The stack
        stack: String,
        /// The user whose grant goes
        user: String,
    },
    /// On a team server: who is granted what on the stack (none: open to every member)
    Grants {
        /// The stack
        stack: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum IntegrationCmd {
    /// List the integrations strata can find, and whether they are installed. It looks in
    /// STRATA_HOME/integrations/ and the directories in STRATA_INTEGRATIONS (`:`-separated)
    List,
    /// Register every flavor of an integration (a name from `integration list`, or a
    /// directory of `.wasm` flavors)
    Install {
        name: String,
        /// Replace flavors of the same name that run other code
        #[arg(long)]
        replace: bool,
    },
    /// Delete the flavors an integration installed (none may be in use)
    Uninstall { name: String },
}

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Create a secret: `secret create NAME --KEY=VALUE …`, `--values=@FILE.yaml`,
    /// `--values='{"KEY":"VALUE"}'`, or `-i` to type the values without echo
    Create {
        name: String,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE | --values=@FILE | -i"
        )]
        values: Vec<String>,
    },
    /// List secrets (names and keys, never values)
    List,
    /// Show a secret, values masked unless --reveal
    Get {
        name: String,
        /// Print the values in clear
        #[arg(long)]
        reveal: bool,
    },
    /// Add or change keys of a secret (an empty value removes the key); takes the same
    /// value forms as `create`
    Update {
        name: String,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE | --values=@FILE | -i"
        )]
        values: Vec<String>,
    },
    /// Rename a secret; components that reference it are rewritten to the new name
    Rename { name: String, new_name: String },
    /// Delete a secret
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ConnectorCmd {
    /// Register a connector: `register NAME --type aws --endpoint=URL --access-key-id=…
    /// --secret-access-key=… [--region=…]`, `--type bearer --endpoint=URL --token=…`,
    /// `--type basic --endpoint=URL --username=… --password=…`; `-i` asks for each
    /// field, credentials without echo
    Register {
        name: String,
        /// aws (SigV4 signing), bearer (`Authorization: Bearer`), basic (user and password)
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE | -i"
        )]
        values: Vec<String>,
    },
    /// List connectors (settings shown, credentials never)
    List,
    /// Show a connector: its settings, its credentials masked, and the components bound to it
    Describe { name: String },
    /// Change fields of a connector (an empty value removes an optional one)
    Update {
        name: String,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY=VALUE | -i"
        )]
        values: Vec<String>,
    },
    /// Rename a connector (the components bound to it stay bound)
    Rename { name: String, new_name: String },
    /// Delete a connector no component is bound to
    Delete { name: String },
    /// Make one real request to the endpoint with the credentials, and say whether they work
    Verify { name: String },
    /// On a team server (admins): let USER name this connector in their components
    Grant {
        /// The connector
        name: String,
        /// The user who may use it
        user: String,
    },
    /// On a team server: take back a grant of this connector
    Revoke {
        /// The connector
        name: String,
        /// The user who may no longer use it
        user: String,
    },
    /// On a team server: who may use this connector
    Grants {
        /// The connector
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PipelineCmd {
    /// Run a pipeline on the active stack: strata runs each step's command in the order
    /// the stack's orchestrator schedules, passing artifacts through its artifact store
    #[command(
        after_help = "The pipeline file (YAML or JSON):\n  name: training\n  steps:\n    - name: load\n      run: python3 {{pipeline.dir}}/load.py --rows {{param.rows}}\n      outputs: [data.csv]\n    - name: train\n      run: python3 {{pipeline.dir}}/train.py\n      inputs: [load.data.csv]\n      outputs: [model.pkl]\n      timeout: 10m\n      env: {SEED: \"42\"}\nA step runs in a fresh working directory holding its inputs; its outputs are the files it writes there.\nExample: strata pipeline run pipeline.yaml --param rows=1000 --verbose"
    )]
    Run {
        /// The pipeline definition
        file: PathBuf,
        /// Runtime configuration: KEY=VALUE (repeatable), handed to every component and to
        /// the steps (`{{param.KEY}}`, `$STRATA_PARAM_KEY`)
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// How many steps of one wave run at once [default: the machine's cores]
        #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: Option<u16>,
        /// Run every step, even those an earlier run with the same inputs makes cached
        #[arg(long)]
        no_cache: bool,
        /// Post to the stack's alerter when the run succeeds too (it always does on failure)
        #[arg(long)]
        notify: bool,
    },
    /// Stop a run under way through the daemon (without one, press Ctrl-C where it runs)
    Cancel {
        /// The run's id (or its first characters)
        run: String,
    },
    /// List, describe, read the logs of, and delete pipeline runs
    #[command(subcommand)]
    Runs(RunsCmd),
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// The runs, newest first
    List {
        /// Only the runs of this pipeline
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// A run: each step's status, start, duration, exit code, cache, and artifacts
    Describe {
        /// The run's id (or its first characters)
        run: String,
    },
    /// What a run's steps wrote to standard output and error (the last 1 MiB of each)
    Logs {
        /// The run's id (or its first characters)
        run: String,
        /// Only this step
        step: Option<String>,
    },
    /// Delete a run: its record, its logs and its artifacts (but those a later run
    /// reuses from the cache)
    Delete {
        /// The run's id (or its first characters)
        run: String,
        /// Keep the artifacts in the store; delete the record alone
        #[arg(long)]
        keep_artifacts: bool,
    },
}

/// Rewrites the command line before clap sees it:
/// - ZenML spells three stack flags with two letters (`-al`, `-an`, `-dv`); clap's short
///   flags are one letter, so those spellings become the long flags.
/// - The global options (`--output`, `--home`, `--verbose`) may come anywhere, also after
///   `--KEY=VALUE` configuration, which clap would otherwise read as configuration: they
///   are moved to the front. (A flavor may not name a field `output`, `home` or
///   `verbose`.)
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    let in_stack = args.iter().any(|a| a == "stack");
    let mut it = args.into_iter();
    let program = it.next();
    let (mut global, mut rest) = (Vec::new(), Vec::new());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--output" | "--home" => {
                global.push(a);
                global.extend(it.next());
            }
            "--verbose" => global.push(a),
            _ if a.starts_with("--output=") || a.starts_with("--home=") => global.push(a),
            "-al" if in_stack => rest.push("--alerter".to_string()),
            "-an" if in_stack => rest.push("--annotator".to_string()),
            "-dv" if in_stack => rest.push("--data-validator".to_string()),
            _ => rest.push(a),
        }
    }
    program.into_iter().chain(global).chain(rest).collect()
}
