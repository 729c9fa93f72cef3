//! Runs a parsed command against the service and prints the result: data on stdout,
//! messages and progress on stderr.

use crate::cli::ConnectorCmd;
use crate::service::ConnectorView;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

pub(crate) use super::prompt::{ask_fields, ask_secret_values};
use super::render::{check, properties, structured, table};
use super::{
    AlerterCmd, AllFlavorsCmd, ArtifactStoreCmd, Cli, Command, ComponentCmd, FlavorCmd, Format,
    IntegrationCmd, PipelineCmd, RegisterArgs, RunsCmd, SecretCmd, StackCmd,
};
use crate::client::Backend;
use crate::error::{Error, Result};
use crate::model::text::{visible, visible_block};
use crate::model::{ComponentType, LimitOverrides, parse_assignments};
use crate::service::{
    ComponentView, FlavorDetail, FlavorOptions, FlavorView, Pipeline, Progress, RunReport,
    RunStatus, StackExport, StackView, StepOutcome, StepStatus,
};

/// Where a command's output goes: this process's stdout and stderr, or (in the daemon)
/// the client that sent the command, as it is written.
pub trait Sink: Sync {
    fn stdout(&self, text: &str);
    fn stderr(&self, text: &str);
}

/// This process's stdout and stderr.
pub struct Terminal;

impl Sink for Terminal {
    fn stdout(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn stderr(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}

/// Whether this process's stderr should get colour, after the usual rules ([`color_for`]).
pub fn stderr_color() -> bool {
    color_for(
        |name| std::env::var_os(name),
        std::io::stderr().is_terminal(),
    )
}

/// The colour rules of no-color.org and bixense.com/clicolors, first match wins:
/// `NO_COLOR` set and not empty → no; `CLICOLOR_FORCE` set, not empty and not `0` → yes;
/// `CLICOLOR=0` → no; else only on a `terminal` whose `TERM` is not `dumb`.
///
/// Not `anstream::AutoStream::choice`, which reads the same variables but takes any
/// non-empty `CLICOLOR_FORCE`, `0` too, as forcing colour (anstyle-query 1.1.5,
/// `clicolor_force`, lib.rs line 35); and the text coloured here is often sent to another
/// process (a daemon's client), so a stream that strips colour on the way out cannot
/// decide it.
fn color_for(var: impl Fn(&str) -> Option<std::ffi::OsString>, terminal: bool) -> bool {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if var("CLICOLOR").is_some_and(|v| v == "0") {
        return false;
    }
    terminal && var("TERM").is_none_or(|t| t != "dumb")
}

/// Runs a parsed command line and returns the exit code: 0 on success, 1 for an error
/// of the user's or a flavor's, 2 for a bug or a damaged store.
///
/// Commands that need no home run here. The rest go to the daemon that serves this
/// home when one runs (unless `STRATA_NO_DAEMON` is set), else to the home opened in
/// this process.
pub fn main(cli: Cli) -> u8 {
    let sink = Terminal;
    let color = stderr_color();
    let outcome = match local_only(&cli) {
        Some(result) => result,
        None => match &cli.command {
            Command::Daemon(cmd) => super::daemon::command(cli.home.clone(), cmd, cli.output),
            Command::Dashboard { no_open } => {
                super::daemon::dashboard(cli.home.clone(), *no_open, cli.output)
            }
            _ => return routed(cli, &sink, color),
        },
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            sink.stderr(&render_error(&e, color));
            exit_code(&e)
        }
    }
}

/// The command against the home's daemon when one runs, else the home opened here.
fn routed(cli: Cli, sink: &dyn Sink, color: bool) -> u8 {
    let opened = crate::client::connect_default(cli.home.clone());
    match opened {
        Ok(backend) => execute(backend.as_ref(), &cli, sink, color),
        Err(e) => {
            sink.stderr(&render_error(&e, color));
            exit_code(&e)
        }
    }
}

/// The exit code for an error: 2 for a bug or damaged data, else 1.
pub fn exit_code(e: &Error) -> u8 {
    if e.kind() == crate::error::ErrorKind::Internal {
        2
    } else {
        1
    }
}

/// `error: …` and, when there is one, `hint: …`, as the CLI prints them. An error may
/// carry a flavor's words, so its text is made visible (control characters escaped,
/// later lines indented) before strata adds its own colours.
pub fn render_error(e: &Error, color: bool) -> String {
    use anstyle::{AnsiColor, Style};
    let paint = |colour: AnsiColor, word: &str| {
        if color {
            let style = Style::new().bold().fg_color(Some(colour.into()));
            format!("{style}{word}{style:#}")
        } else {
            word.to_string()
        }
    };
    let message = e.to_string();
    let mut text = format!(
        "{}: {}\n",
        paint(AnsiColor::Red, "error"),
        visible_block(&message, 2)
    );
    let hint = e.hint();
    if !hint.is_empty() {
        text.push_str(&format!(
            "\n{}: {}\n",
            paint(AnsiColor::Cyan, "hint"),
            visible_block(&hint, 2)
        ));
    }
    text
}

/// A command-line parsing error quotes the arguments: when one of `argv` holds a control
/// character, the error is shown without colour (clap then drops escape sequences) and
/// with the rest made visible. `None`: nothing to escape, print it as clap does.
pub fn escaped_usage_error(e: &clap::Error, argv: &[String]) -> Option<String> {
    argv.iter()
        .any(|a| a.chars().any(crate::model::text::needs_escape))
        .then(|| visible_block(&e.render().to_string(), 0).into_owned())
}

/// The commands that need no home (and so never go to a daemon).
fn local_only(cli: &Cli) -> Option<Result<()>> {
    let out = Output {
        format: cli.output,
        verbose: cli.verbose,
        sink: &Terminal,
    };
    match &cli.command {
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "strata", &mut std::io::stdout());
            Some(Ok(()))
        }
        Command::Flavor(AllFlavorsCmd::Test {
            path,
            timeout_ms,
            memory_mb,
            config,
        }) => Some(test_flavor(&out, path, *timeout_ms, *memory_mb, config)),
        Command::Flavor(AllFlavorsCmd::New {
            name,
            component_type,
            lang,
            dir,
        }) => Some(new_flavor(&out, name, component_type, lang, dir.as_deref())),
        Command::Server(cmd) => super::team::local(cmd, &out),
        Command::Login {
            url,
            token,
            ca_cert,
        } => Some(super::team::login(
            &out,
            url,
            token.as_deref(),
            ca_cert.as_deref(),
        )),
        Command::Logout => Some(super::team::logout(&out)),
        _ => None,
    }
}

fn new_flavor(
    out: &Output,
    name: &str,
    component_type: &str,
    lang: &str,
    dir: Option<&std::path::Path>,
) -> Result<()> {
    let t: ComponentType = component_type.parse()?;
    let dir = crate::scaffold::new_flavor(name, t, lang, dir)?;
    out.err(format!(
        "Made {} flavor `{name}` in {}: run `make` there to build it, `make test` to try it.",
        t.label(),
        dir.display()
    ));
    Ok(())
}

/// Runs `cli` against a home (opened here, or its daemon), printing through `sink`;
/// returns the exit code. What is printed depends only on what the backend answers.
pub fn execute(svc: &dyn Backend, cli: &Cli, sink: &dyn Sink, color: bool) -> u8 {
    let out = Output {
        format: cli.output,
        verbose: cli.verbose,
        sink,
    };
    let result = dispatch(svc, &out, &cli.command);
    for w in svc.take_warnings() {
        out.err(format!("warning: {w}"));
    }
    if cli.verbose {
        for line in svc.take_logs() {
            out.err(format!("log: {line}"));
        }
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            sink.stderr(&render_error(&e, color));
            exit_code(&e)
        }
    }
}

pub(super) struct Output<'a> {
    pub(super) format: Format,
    pub(super) verbose: bool,
    pub(super) sink: &'a dyn Sink,
}

impl Output<'_> {
    /// Prints `value` as JSON/YAML (exact: both escape control characters themselves),
    /// or the table `text()` makes, with every control character but its line breaks
    /// made visible (the tables' cells are made visible whole, line breaks too).
    pub(super) fn show<T: serde::Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        match structured(self.format, value) {
            Some(s) => self.sink.stdout(&s),
            None => self.sink.stdout(&visible_block(&text(), 0)),
        }
    }

    /// What a command did: a message for a person, and with `--output json|yaml` the
    /// result itself for a program.
    pub(super) fn done<T: serde::Serialize>(&self, message: String, value: &T) {
        self.say(message);
        if self.format != Format::Table {
            self.show(value, String::new);
        }
    }

    /// A message for a person (stderr), unless the output is meant for a program.
    pub(super) fn say(&self, message: String) {
        if self.format == Format::Table {
            self.err(message);
        }
    }

    /// A line on stderr, whatever the format: warnings, progress, logs. It may hold a
    /// flavor's words (a log line, a status detail), so it is made visible whole: no
    /// control character reaches the terminal, and no line break starts a line of its own.
    pub(super) fn err(&self, line: String) {
        self.sink.stderr(&format!("{}\n", visible(&line)));
    }
}

fn dispatch(svc: &dyn Backend, out: &Output, command: &Command) -> Result<()> {
    if let Some((t, cmd)) = command.component() {
        return component(svc, out, t, cmd);
    }
    match command {
        Command::Init => {
            let r = svc.init()?;
            out.show(&r, || format!("{}\n", r.home));
            out.say(format!(
                "strata's home is {}; the active stack is `{}`",
                r.home,
                svc.stack_get()?
            ));
            Ok(())
        }
        Command::Stack(cmd) => stack(svc, out, cmd),
        Command::Flavor(AllFlavorsCmd::Test { .. } | AllFlavorsCmd::New { .. })
        | Command::Daemon(_)
        | Command::Dashboard { .. } => Err(Error::Internal(
            "a command that needs no home was sent to one".into(),
        )),
        Command::Flavor(AllFlavorsCmd::List) => {
            let flavors = svc.flavor_list(None)?;
            out.show(&flavors, || flavor_table(&flavors, true));
            Ok(())
        }
        Command::Secret(cmd) => secret(svc, out, cmd),
        Command::ServiceConnector(cmd) => connector(svc, out, cmd),
        Command::Alerter(AlerterCmd::Post {
            name,
            message,
            params,
        }) => {
            let mut pairs = BTreeMap::new();
            for p in params {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(Error::invalid(
                        format!("`--param {p}` has no `=`"),
                        "give each parameter as `--param KEY=VALUE`, e.g. `--param level=error`",
                    ));
                };
                pairs.insert(k.trim().to_string(), v.to_string());
            }
            let r = svc.alerter_post(name, message, pairs)?;
            out.done(
                format!(
                    "Alerter `{}`: {}.",
                    r.alerter,
                    r.detail.trim_end_matches('.')
                ),
                &r,
            );
            Ok(())
        }
        Command::ArtifactStore(cmd) => artifacts(svc, out, cmd),
        Command::Alerter(AlerterCmd::Common(_)) => Err(Error::Internal(
            "an alerter command was not dispatched as a component command".into(),
        )),
        Command::Integration(cmd) => integration(svc, out, cmd),
        Command::Backup { file, force } => {
            let r = svc.backup(&absolute(file)?, *force)?;
            out.done(format!("Backed up {} to {}.", r.summary(), r.file), &r);
            Ok(())
        }
        Command::Restore { file, force } => {
            let r = svc.restore(&absolute(file)?, *force)?;
            if let Some(w) = &r.warning {
                out.err(format!("warning: {w}"));
            }
            out.done(format!("Restored {} from {}.", r.summary(), r.file), &r);
            Ok(())
        }
        Command::Pipeline(cmd) => pipeline(svc, out, cmd),
        Command::Server(cmd) => super::team::remote(svc, out, cmd),
        Command::Whoami => super::team::whoami(svc, out),
        Command::Login { .. } | Command::Logout => Err(Error::Internal(
            "a command that needs no home was sent to one".into(),
        )),
        Command::Completion { .. } => Ok(()),
        _ => Err(Error::Internal("a component command was not routed".into())),
    }
}

fn component(svc: &dyn Backend, out: &Output, t: ComponentType, cmd: &ComponentCmd) -> Result<()> {
    match cmd {
        ComponentCmd::Flavor(f) => flavor(svc, out, t, f),
        ComponentCmd::Register(args) => {
            let (flavor, config, limits) = register_args(svc, t, args)?;
            let v = svc.component_register(t, &args.name, &flavor, config, limits)?;
            out.done(
                format!(
                    "Registered {} `{}` (flavor `{}`).",
                    t.label(),
                    v.name,
                    v.flavor
                ),
                &v,
            );
            Ok(())
        }
        ComponentCmd::Update { name, config } => {
            let (config, limits) = take_limit_flags(config)?;
            let changes = parse_assignments(&config).map_err(|m| {
                Error::invalid(
                    m,
                    format!("see the fields with `strata {t} describe {name}`"),
                )
            })?;
            let v = svc.component_update(t, name, changes, limits)?;
            out.done(format!("Updated {} `{name}`.", t.label()), &v);
            Ok(())
        }
        ComponentCmd::RemoveAttribute { name, key } => {
            svc.component_remove_attribute(t, name, key)?;
            out.say(format!("Removed `{key}` from {} `{name}`.", t.label()));
            Ok(())
        }
        ComponentCmd::Rename { name, new_name } => {
            svc.component_rename(t, name, new_name)?;
            out.say(format!("Renamed {} `{name}` to `{new_name}`.", t.label()));
            Ok(())
        }
        ComponentCmd::Copy { name, new_name } => {
            svc.component_copy(t, name, new_name)?;
            out.say(format!("Copied {} `{name}` to `{new_name}`.", t.label()));
            Ok(())
        }
        ComponentCmd::List => {
            let list = svc.component_list(t)?;
            out.show(&list, || {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|c| {
                        vec![
                            if c.active {
                                "👉".into()
                            } else {
                                String::new()
                            },
                            c.name.clone(),
                            short_id(&c.id),
                            c.flavor.clone(),
                            c.phase.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ACTIVE",
                        &format!("{} NAME", t.column()),
                        "COMPONENT ID",
                        "FLAVOR",
                        "PHASE",
                    ],
                    &rows,
                )
            });
            Ok(())
        }
        ComponentCmd::Describe { name, no_status } => {
            let v = svc.component_describe(t, name, !no_status)?;
            out.show(&v, || describe_component(&v));
            Ok(())
        }
        ComponentCmd::Delete { name } => {
            svc.component_delete(t, name)?;
            out.say(format!("Deleted {} `{name}`.", t.label()));
            Ok(())
        }
        ComponentCmd::Up { name } => {
            svc.component_up(t, name, &mut |p| progress(out, &p))?;
            out.say(format!("{} `{name}` is up.", capitalize(&t.label())));
            Ok(())
        }
        ComponentCmd::Down { name, force } => {
            svc.component_down(t, name, *force, &mut |p| progress(out, &p))?;
            out.say(format!(
                "{} `{name}` is down{}.",
                capitalize(&t.label()),
                if *force { " and deprovisioned" } else { "" }
            ));
            Ok(())
        }
    }
}

/// `--flavor` and `-i` may come after configuration flags, where clap's trailing
/// arguments swallow them: pick them out, then parse the rest as configuration.
fn register_args(
    svc: &dyn Backend,
    t: ComponentType,
    args: &RegisterArgs,
) -> Result<(String, BTreeMap<String, String>, LimitOverrides)> {
    let r = parse_register(t, args)?;
    let mut config = r.config;
    if r.interactive {
        let f = svc.flavor_describe(t, &r.flavor)?.record;
        ask_fields(&f, &mut config)?;
    }
    Ok((r.flavor, config, r.limits))
}

/// What `TYPE register` was given.
pub(crate) struct Registration {
    pub flavor: String,
    pub config: BTreeMap<String, String>,
    pub limits: LimitOverrides,
    pub interactive: bool,
}

pub(crate) fn parse_register(t: ComponentType, args: &RegisterArgs) -> Result<Registration> {
    let mut flavor = args.flavor.clone();
    let mut interactive = args.interactive;
    let mut rest = Vec::new();
    let (config, limits) = take_limit_flags(&args.config)?;
    let mut it = config.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-i" | "--interactive" => interactive = true,
            "-f" | "--flavor" => flavor = it.next().cloned(),
            _ if a.starts_with("--flavor=") => flavor = Some(a["--flavor=".len()..].to_string()),
            _ => rest.push(a.clone()),
        }
    }
    let flavor = flavor.ok_or_else(|| {
        Error::invalid(
            format!("`strata {t} register {}` needs a flavor", args.name),
            format!(
                "add `--flavor=FLAVOR`; the {} flavors are listed by `strata {t} flavor list`",
                t.label()
            ),
        )
    })?;
    let config = parse_assignments(&rest).map_err(|m| {
        Error::invalid(
            m,
            format!("see the fields with `strata {t} flavor describe {flavor}`"),
        )
    })?;
    Ok(Registration {
        flavor,
        config,
        limits,
        interactive,
    })
}

/// Picks `--timeout-ms N` and `--memory-mb N` (a component's own limits) out of the
/// configuration flags; the rest is configuration.
fn take_limit_flags(args: &[String]) -> Result<(Vec<String>, LimitOverrides)> {
    let mut limits = LimitOverrides::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let slot = match flag {
            "--timeout-ms" => &mut limits.timeout_ms,
            "--memory-mb" => &mut limits.memory_mb,
            _ => {
                rest.push(a.clone());
                continue;
            }
        };
        let value = inline.or_else(|| it.next().cloned()).unwrap_or_default();
        *slot = Some(value.parse().map_err(|_| {
            Error::invalid(
                format!("`{flag}` needs a whole number, not `{value}`"),
                format!("write e.g. `{flag}=500`"),
            )
        })?);
    }
    Ok((rest, limits))
}

fn flavor(svc: &dyn Backend, out: &Output, t: ComponentType, cmd: &FlavorCmd) -> Result<()> {
    match cmd {
        FlavorCmd::List => {
            let flavors = svc.flavor_list(Some(t))?;
            out.show(&flavors, || flavor_table(&flavors, false));
        }
        FlavorCmd::Describe { flavor } => {
            let f = svc.flavor_describe(t, flavor)?;
            out.show(&f.record, || describe_flavor(&f));
        }
        FlavorCmd::Register(a) => {
            let opts = FlavorOptions {
                timeout_ms: a.timeout_ms,
                memory_mb: a.memory_mb,
                replace: a.replace,
                allow_origins: a.allow_origin.clone(),
            };
            let f = svc.flavor_register(t, &absolute(&a.path)?, opts)?;
            let extra = if f.allowed_origins.is_empty() {
                String::new()
            } else {
                format!(
                    " Besides its `url` fields it may reach {}, as you accepted.",
                    f.allowed_origins.join(", ")
                )
            };
            out.done(
                format!(
                    "Registered {} flavor `{}` ({}).{extra}",
                    t.label(),
                    f.info.name,
                    f.source_label()
                ),
                &f,
            );
        }
        FlavorCmd::Delete { flavor } => {
            svc.flavor_delete(t, flavor)?;
            out.say(format!("Deleted {} flavor `{flavor}`.", t.label()));
        }
    }
    Ok(())
}

fn stack(svc: &dyn Backend, out: &Output, cmd: &StackCmd) -> Result<()> {
    match cmd {
        StackCmd::Register {
            name,
            components,
            set,
        } => {
            let v = svc.stack_register(name, components.by_type(), *set)?;
            out.done(
                format!(
                    "Registered stack `{name}`{}.",
                    if *set { " and made it active" } else { "" }
                ),
                &v,
            );
        }
        StackCmd::List => {
            let stacks = svc.stack_list()?;
            out.show(&stacks, || stack_table(&stacks));
        }
        StackCmd::Describe { name } => {
            let v = svc.stack_describe(name.as_deref())?;
            out.show(&v, || describe_stack(&v));
        }
        StackCmd::Get => {
            let name = svc.stack_get()?;
            out.show(&serde_json::json!({ "active_stack": name }), || {
                format!("{name}\n")
            });
        }
        StackCmd::Set { name } => {
            svc.stack_set(name)?;
            out.say(format!("Active stack set to `{name}`."));
        }
        StackCmd::Up { name } => {
            let v = svc.stack_up(name.as_deref(), &mut |p| progress(out, &p))?;
            out.say(format!("Stack `{}` is up.", v.name));
        }
        StackCmd::Down { name, force } => {
            let v = svc.stack_down(name.as_deref(), *force, &mut |p| progress(out, &p))?;
            out.say(format!(
                "Stack `{}` is down{}.",
                v.name,
                if *force { " and deprovisioned" } else { "" }
            ));
        }
        StackCmd::Update { name, components } => {
            let v = svc.stack_update(name, components.by_type())?;
            out.done(format!("Updated stack `{name}`."), &v);
        }
        StackCmd::RemoveComponent { name, components } => {
            svc.stack_remove_component(name, components.by_type())?;
            out.say(format!("Updated stack `{name}`."));
        }
        StackCmd::Rename { name, new_name } => {
            svc.stack_rename(name, new_name)?;
            out.say(format!("Renamed stack `{name}` to `{new_name}`."));
        }
        StackCmd::Copy { name, new_name } => {
            svc.stack_copy(name, new_name)?;
            out.say(format!("Copied stack `{name}` to `{new_name}`."));
        }
        StackCmd::Export { name, file, force } => {
            let export = svc.stack_export(name)?;
            // The same exact YAML as `--output yaml`: no control or format character raw,
            // also when it goes to the terminal (`-`).
            let yaml = structured(Format::Yaml, &export).expect("invariant: YAML is structured");
            let text = format!(
                "# strata stack export: rebuild it with `strata stack import FILE [NAME]`\n{yaml}"
            );
            let path = file
                .clone()
                .unwrap_or_else(|| format!("{name}.yaml").into());
            if path.as_os_str() == "-" {
                out.sink.stdout(&text);
            } else {
                let at = path.clone();
                if at.exists() && !force {
                    return Err(Error::exists(
                        format!("file `{}`", path.display()),
                        "give another file, or pass --force to overwrite it",
                    ));
                }
                std::fs::write(&at, text)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                out.say(format!(
                    "Exported stack `{name}` ({} components) to {}.",
                    export.components.len(),
                    path.display()
                ));
            }
        }
        StackCmd::Import { file, name, force } => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::invalid(
                    format!("cannot read `{}`: {e}", file.display()),
                    "give a file written by `strata stack export`",
                )
            })?;
            let export: StackExport = serde_norway::from_str(&text).map_err(|e| {
                Error::invalid(
                    format!("`{}` is not a stack export: {e}", file.display()),
                    "give a file written by `strata stack export NAME FILE.yaml`",
                )
            })?;
            let r = svc.stack_import(&export, name.as_deref(), *force)?;
            for f in &r.forced {
                out.err(format!(
                    "warning: {f} runs other code than the exported stack used (--force)"
                ));
            }
            for (old, new) in &r.renamed {
                out.say(format!(
                    "`{old}` is taken by a component with another configuration: imported as `{new}`."
                ));
            }
            out.done(
                format!(
                    "Imported stack `{}`: created {}; reused {}.",
                    r.stack.name,
                    list_or_none(&r.created),
                    list_or_none(&r.reused)
                ),
                &r,
            );
        }
        StackCmd::Delete {
            name,
            recursive: false,
        } => {
            svc.stack_delete(name)?;
            out.say(format!("Deleted stack `{name}`."));
        }
        StackCmd::Delete {
            name,
            recursive: true,
        } => {
            let deleted = svc.stack_delete_recursive(name)?;
            let also = if deleted.is_empty() {
                String::new()
            } else {
                format!(" and {}", deleted.join(", "))
            };
            out.say(format!("Deleted stack `{name}`{also}."));
        }
        StackCmd::Grant { stack, user, role } => {
            super::team::grant(svc, out, "stack", stack, user, *role)?
        }
        StackCmd::Revoke { stack, user } => super::team::revoke(svc, out, "stack", stack, user)?,
        StackCmd::Grants { stack } => super::team::grants(svc, out, "stack", stack)?,
    }
    Ok(())
}

/// `strata flavor test`: runs the test in a throwaway home and prints each step.
fn test_flavor(
    out: &Output,
    path: &std::path::Path,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    config: &[String],
) -> Result<()> {
    let overrides = parse_assignments(config)
        .map_err(|m| Error::invalid(m, "give the test component's configuration as --KEY=VALUE"))?;
    let opts = FlavorOptions {
        timeout_ms,
        memory_mb,
        replace: false,
        allow_origins: Vec::new(),
    };
    let r = crate::service::flavor_test(path, overrides, opts)?;
    out.show(&r, || {
        let rows: Vec<Vec<String>> = r
            .steps
            .iter()
            .map(|s| {
                vec![
                    s.step.clone(),
                    check(s.ok).to_string(),
                    format!("{:.1}", s.ms),
                    s.detail.clone(),
                ]
            })
            .collect();
        table(&["STEP", "OK", "MS", "DETAIL"], &rows)
    });
    if r.passed {
        out.say(format!("Flavor `{}` passed.", r.flavor));
        Ok(())
    } else {
        let failed = r.steps.iter().find(|s| !s.ok);
        Err(Error::invalid(
            format!(
                "flavor test of `{}` failed at `{}`",
                path.display(),
                failed.map_or("?", |s| s.step.trim())
            ),
            "fix what the step's detail names, rebuild the .wasm, and run `strata flavor test` again",
        ))
    }
}

fn artifacts(svc: &dyn Backend, out: &Output, cmd: &ArtifactStoreCmd) -> Result<()> {
    use std::io::{Read, Write};
    match cmd {
        ArtifactStoreCmd::Common(_) => {
            return Err(Error::Internal(
                "an artifact-store command was not dispatched as a component command".into(),
            ));
        }
        ArtifactStoreCmd::Put {
            store,
            file,
            path,
            overwrite,
        } => {
            let stdin = file.as_os_str() == "-";
            let path = match (path, stdin) {
                (Some(p), _) => p.clone(),
                (None, false) => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("`{}` names no file", file.display()),
                            "give the path in the store as well: `put STORE FILE PATH`",
                        )
                    })?,
                (None, true) => {
                    return Err(Error::invalid(
                        "standard input has no name",
                        "give the path in the store: `put STORE - PATH`",
                    ));
                }
            };
            let limit = strata::service::MAX_ARTIFACT_BYTES;
            let mut data = Vec::new();
            let read = if stdin {
                std::io::stdin().take(limit + 1).read_to_end(&mut data)
            } else {
                std::fs::File::open(file).and_then(|f| f.take(limit + 1).read_to_end(&mut data))
            };
            read.map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            if data.len() as u64 > limit {
                return Err(Error::invalid(
                    format!(
                        "{} is larger than the {} MiB `put` moves",
                        file.display(),
                        limit >> 20
                    ),
                    "copy it with the store's own tools (for S3: `aws s3 cp`)",
                ));
            }
            let r = svc.artifact_put(store, &path, &data, *overwrite)?;
            out.done(
                format!(
                    "Wrote {} ({} bytes) to artifact store `{}` in {} ms.",
                    r.path, r.size, r.store, r.elapsed_ms
                ),
                &r,
            );
        }
        ArtifactStoreCmd::Get {
            store,
            path,
            file,
            overwrite,
        } => {
            let to = file.as_ref().filter(|f| f.as_os_str() != "-");
            if let Some(f) = to
                && f.exists()
                && !*overwrite
            {
                return Err(Error::exists(
                    format!("{}", f.display()),
                    "give another file, or --overwrite to replace it",
                ));
            }
            let data = svc.artifact_get(store, path)?;
            match to {
                Some(f) => {
                    std::fs::write(f, &data)
                        .map_err(|e| Error::io(format!("writing {}", f.display()), e))?;
                    out.say(format!(
                        "Wrote {} ({} bytes) from artifact store `{store}`.",
                        f.display(),
                        data.len()
                    ));
                }
                // A terminal gets the bytes as text, made visible: nothing a flavor
                // returns reaches it as a control character. A pipe or a file gets them
                // exact.
                None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                    out.sink
                        .stdout(&visible_block(&String::from_utf8_lossy(&data), 0));
                }
                None => std::io::stdout()
                    .write_all(&data)
                    .map_err(|e| Error::io("writing to standard output", e))?,
            }
        }
        ArtifactStoreCmd::Ls { store, path } => {
            let entries = svc.artifact_list(store, path.as_deref().unwrap_or(""))?;
            out.show(&entries, || {
                entries
                    .iter()
                    .map(|e| format!("{}{}\n", e.name, if e.is_dir { "/" } else { "" }))
                    .collect()
            });
        }
        ArtifactStoreCmd::Stat { store, path } => {
            let r = svc.artifact_stat(store, path)?;
            out.show(&r, || {
                properties(
                    &format!("Artifact store `{store}`: {}", r.path),
                    &[
                        (
                            "KIND".to_string(),
                            if r.is_dir { "directory" } else { "file" }.to_string(),
                        ),
                        ("SIZE".to_string(), format!("{} bytes", r.size)),
                        (
                            "MODIFIED".to_string(),
                            r.modified_ms
                                .map_or_else(|| "unknown".to_string(), super::render::utc),
                        ),
                    ],
                )
            });
        }
        ArtifactStoreCmd::Rm {
            store,
            path,
            recursive,
        } => {
            svc.artifact_remove(store, path, *recursive)?;
            out.say(format!("Removed {path} from artifact store `{store}`."));
        }
    }
    Ok(())
}

fn integration(svc: &dyn Backend, out: &Output, cmd: &IntegrationCmd) -> Result<()> {
    match cmd {
        IntegrationCmd::List => {
            let list = svc.integration_list()?;
            out.show(&list, || {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|i| {
                        vec![
                            i.name.clone(),
                            check(i.installed).to_string(),
                            i.files
                                .iter()
                                .map(|f| match &f.registered_as {
                                    Some(r) => format!("{} ({r})", f.file),
                                    None => f.file.clone(),
                                })
                                .collect::<Vec<_>>()
                                .join(", "),
                            i.path.clone(),
                        ]
                    })
                    .collect();
                table(&["INTEGRATION", "INSTALLED", "FLAVORS", "PATH"], &rows)
            });
        }
        IntegrationCmd::Install { name, replace } => {
            let done = svc.integration_install(&integration_arg(name)?, *replace)?;
            for d in &done {
                out.say(format!(
                    "{} {} flavor `{}` ({}).",
                    capitalize(&d.outcome),
                    d.flavor.component_type.label(),
                    d.flavor.flavor,
                    d.flavor.source
                ));
            }
            if out.format != Format::Table {
                out.show(&done, String::new);
            }
        }
        IntegrationCmd::Uninstall { name } => {
            for r in svc.integration_uninstall(name)? {
                out.say(format!("Deleted {r}."));
            }
        }
    }
    Ok(())
}

fn secret(svc: &dyn Backend, out: &Output, cmd: &SecretCmd) -> Result<()> {
    match cmd {
        SecretCmd::Create { name, values: v } => {
            let s = svc.secret_create(name, secret_values(v)?)?;
            out.say(format!(
                "Created secret `{name}` with keys: {}.",
                s.values.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        SecretCmd::List => {
            let list = svc.secret_list()?;
            out.show(&list, || {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            short_id(&s.id),
                            s.values.keys().cloned().collect::<Vec<_>>().join(", "),
                        ]
                    })
                    .collect();
                table(&["SECRET NAME", "SECRET ID", "KEYS"], &rows)
            });
        }
        SecretCmd::Get { name, reveal } => {
            let s = svc.secret_get(name, *reveal)?;
            out.show(&s, || {
                let rows: Vec<Vec<String>> = s
                    .values
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone()])
                    .collect();
                format!("secret `{}`\n{}", s.name, table(&["KEY", "VALUE"], &rows))
            });
        }
        SecretCmd::Update { name, values: v } => {
            svc.secret_update(name, secret_values(v)?)?;
            out.say(format!("Updated secret `{name}`."));
        }
        SecretCmd::Delete { name } => {
            svc.secret_delete(name)?;
            out.say(format!("Deleted secret `{name}`."));
        }
        SecretCmd::Rename { name, new_name } => {
            let rewritten = svc.secret_rename(name, new_name)?;
            out.say(format!("Renamed secret `{name}` to `{new_name}`."));
            if !rewritten.is_empty() {
                out.say(format!(
                    "Rewrote the references in {}.",
                    rewritten.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn connector(svc: &dyn Backend, out: &Output, cmd: &ConnectorCmd) -> Result<()> {
    let values = |kind: Option<&str>, args: &[String]| -> Result<BTreeMap<String, String>> {
        let interactive = args.iter().any(|a| a == "-i" || a == "--interactive");
        let rest: Vec<String> = args
            .iter()
            .filter(|a| *a != "-i" && *a != "--interactive")
            .cloned()
            .collect();
        let mut v = parse_assignments(&rest).map_err(|m| {
            Error::invalid(
                m,
                "give the connector's fields as --KEY=VALUE, or -i to be asked",
            )
        })?;
        if interactive {
            let kind = match kind {
                Some(k) => k.to_string(),
                None => {
                    return Err(Error::invalid(
                        "`-i` works with `register`",
                        "give the changed fields as --KEY=VALUE",
                    ));
                }
            };
            super::prompt::ask_connector_fields(&kind, &mut v)?;
        }
        Ok(v)
    };
    let describe = |c: &ConnectorView| {
        let rows: Vec<Vec<String>> = c
            .values
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        let used = if c.used_by.is_empty() {
            "no component".to_string()
        } else {
            c.used_by.join(", ")
        };
        format!(
            "service connector `{}` (type {}, endpoint {})\n{}\nused by: {used}\n",
            c.name,
            c.kind,
            c.endpoint,
            table(&["FIELD", "VALUE"], &rows)
        )
    };
    match cmd {
        ConnectorCmd::Register {
            name,
            kind,
            values: v,
        } => {
            let c = svc.connector_register(name, kind, values(Some(kind), v)?)?;
            out.done(
                format!(
                    "Registered service connector `{name}` ({kind}, {}). Bind a component to it with --connector={name}.",
                    c.endpoint
                ),
                &c,
            );
        }
        ConnectorCmd::List => {
            let list = svc.connector_list()?;
            out.show(&list, || {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.kind.clone(),
                            c.endpoint.clone(),
                            c.used_by.len().to_string(),
                        ]
                    })
                    .collect();
                table(&["NAME", "TYPE", "ENDPOINT", "COMPONENTS"], &rows)
            });
        }
        ConnectorCmd::Describe { name } => {
            let c = svc.connector_describe(name)?;
            out.show(&c, || describe(&c));
        }
        ConnectorCmd::Update { name, values: v } => {
            let c = svc.connector_update(name, values(None, v)?)?;
            out.done(format!("Updated service connector `{name}`."), &c);
        }
        ConnectorCmd::Rename { name, new_name } => {
            let c = svc.connector_rename(name, new_name)?;
            out.done(
                format!("Renamed service connector `{name}` to `{new_name}`."),
                &c,
            );
        }
        ConnectorCmd::Delete { name } => {
            svc.connector_delete(name)?;
            out.say(format!("Deleted service connector `{name}`."));
        }
        ConnectorCmd::Grant { name, user } => super::team::grant(
            svc,
            out,
            "connector",
            name,
            user,
            crate::service::Role::Member,
        )?,
        ConnectorCmd::Revoke { name, user } => {
            super::team::revoke(svc, out, "connector", name, user)?
        }
        ConnectorCmd::Grants { name } => super::team::grants(svc, out, "connector", name)?,
        ConnectorCmd::Verify { name } => {
            let r = svc.connector_verify(name)?;
            if !r.ok {
                if out.format != Format::Table {
                    out.show(&r, String::new);
                }
                return Err(Error::invalid(
                    format!("service connector `{name}` failed its check: {}", r.detail),
                    format!("see it with `strata service-connector describe {name}`"),
                ));
            }
            out.show(&r, || format!("{}\n", r.detail));
        }
    }
    Ok(())
}

/// The values of `secret create` / `update`: `--KEY=VALUE` pairs, `--values=@FILE`
/// (JSON or YAML), `--values=JSON`, and with `-i` typed on the terminal without echo.
fn secret_values(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut interactive = false;
    let mut from: Vec<String> = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-i" | "--interactive" => interactive = true,
            "--values" => from.push(it.next().cloned().ok_or_else(|| {
                Error::invalid(
                    "`--values` needs a value",
                    "write `--values=@FILE.yaml` or `--values='{\"KEY\":\"VALUE\"}'`",
                )
            })?),
            _ if a.starts_with("--values=") => from.push(a["--values=".len()..].to_string()),
            _ => rest.push(a.clone()),
        }
    }
    let mut values = parse_assignments(&rest)
        .map_err(|m| Error::invalid(m, "give values as --KEY=VALUE, --values=@FILE.yaml or -i"))?;
    for source in from {
        for (k, v) in values_document(&source)? {
            if values.insert(k.clone(), v).is_some() {
                return Err(Error::invalid(
                    format!("key `{k}` is given twice"),
                    "give each key once",
                ));
            }
        }
    }
    if interactive {
        ask_secret_values(&mut values)?;
    }
    Ok(values)
}

/// `@FILE` (JSON or YAML) or an inline JSON/YAML mapping, to a flat map of strings.
fn values_document(source: &str) -> Result<BTreeMap<String, String>> {
    let (text, what) = match source.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                Error::invalid(
                    format!("cannot read `{path}`: {e}"),
                    "give `--values=@FILE` with a JSON or YAML file of KEY: VALUE",
                )
            })?,
            format!("`{path}`"),
        ),
        None => (source.to_string(), "the `--values` text".to_string()),
    };
    let hint = "give a mapping of KEY: VALUE, e.g. {\"username\": \"admin\", \"password\": \"…\"}";
    let doc: serde_norway::Value = serde_norway::from_str(&text)
        .map_err(|e| Error::invalid(format!("{what} is not JSON or YAML: {e}"), hint))?;
    let serde_norway::Value::Mapping(map) = doc else {
        return Err(Error::invalid(format!("{what} is not a mapping"), hint));
    };
    map.into_iter()
        .map(|(k, v)| {
            let key = match k {
                serde_norway::Value::String(s) => s,
                other => {
                    return Err(Error::invalid(
                        format!("{what} has a key that is not a string: {other:?}"),
                        hint,
                    ));
                }
            };
            let value = match v {
                serde_norway::Value::String(s) => s,
                // An integer's text survives (5432); a float's may not (1.10 → 1.1).
                serde_norway::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                serde_norway::Value::Number(n) => {
                    return Err(Error::invalid(
                        format!("{what}: the value of `{key}` is the number {n}, which might not keep its exact text"),
                        format!("quote the value of `{key}` in the file, so it is kept as written"),
                    ));
                }
                serde_norway::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(Error::invalid(
                        format!("{what}: the value of `{key}` is not a string, number or boolean"),
                        hint,
                    ));
                }
            };
            Ok((key, value))
        })
        .collect()
}

fn progress(out: &Output, p: &Progress) {
    if out.format != Format::Table && !out.verbose {
        return;
    }
    let who = format!("{} `{}`", p.component_type, p.name);
    match &p.outcome {
        StepOutcome::Started => out.err(format!("{who}: {}…", p.step)),
        StepOutcome::Done { ms } => out.err(format!("{who}: {} done ({ms} ms)", p.step)),
        StepOutcome::Unchanged { detail } => out.err(format!("{who}: {detail}")),
        StepOutcome::Failed { .. } => out.err(format!("{who}: {} failed", p.step)),
    }
}

fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn flavor_table(flavors: &[FlavorView], with_type: bool) -> String {
    let rows: Vec<Vec<String>> = flavors
        .iter()
        .map(|f| {
            let mut r = vec![
                f.flavor.clone(),
                f.integration.to_string(),
                check(f.ready_to_use),
                f.source.clone(),
            ];
            if with_type {
                r.insert(0, f.component_type.to_string());
            }
            r
        })
        .collect();
    let mut headers = vec!["FLAVOR", "INTEGRATION", "READY-TO-USE", "SOURCE"];
    if with_type {
        headers.insert(0, "TYPE");
    }
    table(&headers, &rows)
}

fn describe_flavor(d: &FlavorDetail) -> String {
    let (f, i) = (&d.view, &d.record.info);
    let schemes: Vec<String> = i
        .supported_schemes
        .iter()
        .map(|s| {
            if s.is_empty() {
                "local paths".into()
            } else {
                format!("{s}://")
            }
        })
        .collect();
    let mut head = vec![
        ("TYPE".to_string(), i.component_type.to_string()),
        ("VERSION".into(), i.version.clone()),
        ("DESCRIPTION".into(), i.description.clone()),
        ("INTEGRATION".into(), f.integration.to_string()),
        ("SOURCE".into(), f.source.clone()),
        ("SHA256".into(), f.sha256.clone()),
        ("WIT".into(), format!("strata:flavor@{}", i.wit)),
        (
            "EXTRA ORIGINS".into(),
            if i.origins.is_empty() {
                "-".into()
            } else {
                format!("{} (accepted at registration)", i.origins.join(", "))
            },
        ),
        (
            "SUPPORTED SCHEMES".into(),
            if schemes.is_empty() {
                "-".into()
            } else {
                schemes.join(", ")
            },
        ),
        (
            "LIMITS".into(),
            format!(
                "{} ms per call, {} MiB memory, {} KiB returned",
                d.record.limits.timeout_ms,
                d.record.limits.memory_bytes >> 20,
                d.record.limits.max_return_bytes >> 10
            ),
        ),
        ("COMPONENTS".into(), f.components.to_string()),
    ];
    for r in &i.requirements {
        let target = match &r.flavor {
            Some(fl) => format!("{} `{fl}`", r.component_type),
            None => r.component_type.to_string(),
        };
        head.push((
            "REQUIREMENT".into(),
            format!(
                "{} {target}: {}",
                if r.kind == crate::model::RequirementKind::Requires {
                    "requires"
                } else {
                    "refuses"
                },
                r.reason
            ),
        ));
    }
    let fields: Vec<Vec<String>> = i
        .config
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.kind.as_str().to_string(),
                if s.required && s.default.is_none() {
                    "yes".into()
                } else {
                    "no".into()
                },
                s.default.clone().unwrap_or_else(|| "-".into()),
                s.description.clone(),
            ]
        })
        .collect();
    let config = if fields.is_empty() {
        "This flavor takes no configuration.\n".to_string()
    } else {
        table(
            &["FIELD", "KIND", "REQUIRED", "DEFAULT", "DESCRIPTION"],
            &fields,
        )
    };
    format!(
        "{}{config}",
        properties(
            &format!("{} flavor `{}`", i.component_type.label(), i.name),
            &head
        )
    )
}

fn describe_component(v: &ComponentView) -> String {
    let mut pairs = vec![
        ("ID".to_string(), v.id.clone()),
        (
            "FLAVOR".into(),
            format!(
                "{} (sha256:{})",
                v.flavor,
                crate::model::short_sha(&v.flavor_sha256)
            ),
        ),
        (
            "PHASE".into(),
            if v.interrupted {
                format!("{} (interrupted: `up` or `down` repeats it)", v.phase)
            } else {
                v.phase.to_string()
            },
        ),
        (
            "STACKS".into(),
            if v.stacks.is_empty() {
                "-".into()
            } else {
                v.stacks.join(", ")
            },
        ),
        (
            "GRANTS".into(),
            if v.grants.is_empty() && v.net.is_empty() {
                "nothing".into()
            } else {
                v.grants
                    .iter()
                    .map(|g| {
                        let later = if g.exists {
                            ""
                        } else {
                            ", created at provision"
                        };
                        format!("{} ({}{later})", g.path, g.access)
                    })
                    .chain(v.net.iter().map(|n| match &n.credential {
                        Some(c) => format!(
                            "{} (network, {}; credentials of connector `{c}` added by strata)",
                            n.origin, n.from
                        ),
                        None => format!("{} (network, {})", n.origin, n.from),
                    }))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "LIMITS".into(),
            format!(
                "{} ms per call ({}), {} MiB memory ({})",
                v.timeout_ms,
                if v.own_limits.timeout_ms.is_some() {
                    "this component"
                } else {
                    "flavor"
                },
                v.memory_mb,
                if v.own_limits.memory_mb.is_some() {
                    "this component"
                } else {
                    "flavor"
                },
            ),
        ),
    ];
    for c in &v.config {
        pairs.push((
            c.key.clone(),
            if c.default {
                format!("{} (default)", c.value)
            } else {
                c.value.clone()
            },
        ));
    }
    if let Some(e) = &v.last_error {
        pairs.push((
            "LAST ERROR".into(),
            format!("{} at {}: {}", e.call, super::render::utc(e.at), e.message),
        ));
    }
    match &v.status {
        Some(Ok(s)) => pairs.push((
            "STATUS".into(),
            format!(
                "provisioned {}  running {}  {}",
                check(s.provisioned),
                check(s.running),
                s.detail
            ),
        )),
        Some(Err(e)) => pairs.push(("STATUS".into(), format!("unknown: {e}"))),
        None => {}
    }
    properties(
        &format!("{} `{}`", v.component_type.label(), v.name),
        &pairs,
    )
}

fn stack_table(stacks: &[StackView]) -> String {
    let types: Vec<ComponentType> = ComponentType::ALL
        .into_iter()
        .filter(|t| {
            stacks
                .iter()
                .any(|s| s.components.iter().any(|m| m.component_type == *t))
        })
        .collect();
    let mut headers = vec!["ACTIVE".to_string(), "STACK NAME".into(), "STACK ID".into()];
    headers.extend(types.iter().map(|t| t.column()));
    let rows: Vec<Vec<String>> = stacks
        .iter()
        .map(|s| {
            let mut r = vec![
                if s.active {
                    "👉".into()
                } else {
                    String::new()
                },
                s.name.clone(),
                short_id(&s.id),
            ];
            for t in &types {
                let names: Vec<&str> = s
                    .components
                    .iter()
                    .filter(|m| m.component_type == *t)
                    .map(|m| m.name.as_str())
                    .collect();
                r.push(names.join(", "));
            }
            r
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&headers, &rows)
}

fn describe_stack(v: &StackView) -> String {
    // The CONNECTOR column shows only when a component uses one.
    let connectors = v.components.iter().any(|m| m.connector.is_some());
    let rows: Vec<Vec<String>> = v
        .components
        .iter()
        .map(|m| {
            let mut row = vec![
                m.component_type.column(),
                m.name.clone(),
                m.flavor.clone(),
                m.phase.clone(),
            ];
            if connectors {
                row.push(m.connector.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    let mut head = vec!["COMPONENT_TYPE", "COMPONENT_NAME", "FLAVOR", "PHASE"];
    if connectors {
        head.push("CONNECTOR");
    }
    format!(
        "Stack `{}`{} (id {})\n{}",
        v.name,
        if v.active { " (active)" } else { "" },
        v.id,
        table(&head, &rows)
    )
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `path` as the user meant it: a relative path is taken from the directory the command
/// was given in, here, before the path goes to whoever serves the home.
fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::io(format!("reading the path {}", path.display()), e))
}

/// `integration install NAME|DIR`: a directory (a path with a `/`, or a directory here
/// of that name) is sent as its absolute path; anything else is an integration's name.
fn integration_arg(given: &str) -> Result<String> {
    let p = std::path::Path::new(given);
    if given.contains('/') || p.is_dir() {
        return Ok(absolute(p)?.display().to_string());
    }
    Ok(given.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn color(vars: &[(&str, &str)], terminal: bool) -> bool {
        color_for(
            |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into()),
            terminal,
        )
    }

    #[test]
    fn colour_follows_no_color_then_clicolor_force_then_clicolor_then_the_terminal() {
        let term = [("TERM", "xterm")];
        assert!(color(&term, true));
        assert!(!color(&term, false));
        assert!(!color(&[("TERM", "dumb")], true));
        assert!(!color(&[("NO_COLOR", "1")], true));
        assert!(
            color(&[("NO_COLOR", "")], true),
            "an empty NO_COLOR is unset"
        );
        assert!(color(&[("CLICOLOR_FORCE", "1")], false));
        assert!(!color(&[("CLICOLOR_FORCE", "0")], false));
        assert!(!color(&[("CLICOLOR_FORCE", "")], false));
        assert!(!color(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], true));
        assert!(color(&[("CLICOLOR_FORCE", "1"), ("CLICOLOR", "0")], false));
        assert!(!color(&[("CLICOLOR", "0")], true));
        assert!(color(&[("CLICOLOR", "1")], true));
    }

    #[test]
    fn errors_are_coloured_only_when_asked() {
        let e = Error::invalid("no stack `x`", "list them");
        let plain = render_error(&e, false);
        assert_eq!(plain, "error: no stack `x`\n\nhint: list them\n");
        let coloured = render_error(&e, true);
        assert!(
            coloured.starts_with("\x1b[1m\x1b[31merror\x1b[0m: no stack `x`\n"),
            "{coloured:?}"
        );
        assert!(
            coloured.contains("\n\x1b[1m\x1b[36mhint\x1b[0m: list them\n"),
            "{coloured:?}"
        );
    }
}

/// Set by SIGINT while a pipeline runs: the run is cancelled (a second Ctrl-C ends
/// strata at once).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

fn step_line(step: &str, status: StepStatus, detail: &str) -> String {
    let mark = match status {
        StepStatus::Completed => "ok",
        StepStatus::Cached => "cached",
        StepStatus::Failed => "FAILED",
        StepStatus::Running => "running",
        StepStatus::Skipped => "skipped",
        StepStatus::Cancelled => "cancelled",
        StepStatus::Interrupted => "interrupted",
        StepStatus::Pending => "pending",
    };
    if detail.is_empty() {
        format!("step {step}: {mark}")
    } else {
        format!("step {step}: {mark} ({detail})")
    }
}

fn runtime_params(params: &[String]) -> Result<BTreeMap<String, String>> {
    let mut runtime = BTreeMap::new();
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            return Err(Error::invalid(
                format!("`--param {p}` is not KEY=VALUE"),
                "write `--param runtime_param_1=3`",
            ));
        };
        if runtime.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Error::invalid(
                format!("`--param {k}` is given twice"),
                "give each key once",
            ));
        }
    }
    Ok(runtime)
}

fn pipeline(svc: &dyn Backend, out: &Output, cmd: &PipelineCmd) -> Result<()> {
    match cmd {
        PipelineCmd::Run {
            file,
            params,
            jobs,
            no_cache,
            notify,
        } => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::invalid(
                    format!("cannot read pipeline file `{}`: {e}", file.display()),
                    "give the path of a YAML or JSON pipeline definition",
                )
            })?;
            let pipeline: Pipeline = serde_norway::from_str(&text).map_err(|e| {
                Error::invalid(
                    format!("`{}` is not a valid pipeline definition: {e}", file.display()),
                    "it needs `name:` and a list of `steps:`, each with `name` and optionally `run`, `inputs`, `outputs`, `upstream`, `timeout`, `env` and `parameters` (see `strata pipeline run --help`)",
                )
            })?;
            let runtime = runtime_params(params)?;
            let file = absolute(file)?;
            let dir = file
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| "/".into());
            let mut opts = crate::service::RunOptions::new(dir);
            if let Some(j) = jobs {
                opts.jobs = usize::from(*j);
            }
            opts.no_cache = *no_cache;
            opts.notify = *notify;
            let run_id = std::sync::Mutex::new(None::<String>);
            let done = std::sync::atomic::AtomicBool::new(false);
            let watch = |e: crate::service::RunEvent<'_>| match e {
                crate::service::RunEvent::Started { run_id: id } => {
                    *run_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_string());
                    out.err(format!(
                        "Run {id} of pipeline `{}`: Ctrl-C cancels it.",
                        pipeline.name
                    ));
                }
                crate::service::RunEvent::Step {
                    step,
                    status,
                    detail,
                } => {
                    if status != StepStatus::Running || out.verbose {
                        out.err(step_line(step, status, detail));
                    }
                }
                crate::service::RunEvent::Output { step, text } => {
                    if step.is_empty() {
                        out.err(text.to_string());
                    } else if out.verbose {
                        for line in text.lines() {
                            out.err(format!("[{step}] {line}"));
                        }
                    }
                }
            };
            INTERRUPTED.store(false, std::sync::atomic::Ordering::SeqCst);
            // SAFETY: installs a handler that only stores to an atomic (or _exits).
            // SIGTERM and SIGHUP (a closed terminal) too: the run ends recorded, its steps
            // stopped, rather than strata dying with them still running.
            let previous = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].map(|sig| {
                // SAFETY: as above.
                (sig, unsafe {
                    libc::signal(sig, on_sigint as *const () as libc::sighandler_t)
                })
            });
            let result = std::thread::scope(|scope| {
                scope.spawn(|| {
                    let mut asked = false;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        if !asked && INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                            let id = run_id.lock().unwrap_or_else(|p| p.into_inner()).clone();
                            if let Some(id) = id {
                                asked = true;
                                out.err(format!(
                                    "cancelling run {id} (Ctrl-C again to quit at once)"
                                ));
                                if let Err(e) = svc.run_cancel(&id) {
                                    out.err(format!("could not cancel: {e}"));
                                }
                            }
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                });
                let r = svc.pipeline_run(&pipeline, runtime, &opts, &watch);
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                r
            });
            // SAFETY: puts back the handler there was.
            for (sig, handler) in previous {
                // SAFETY: as above.
                unsafe { libc::signal(sig, handler) };
            }
            let r = result?;
            out.show(&r, || run_text(&r));
            match r.status {
                RunStatus::Completed => Ok(()),
                _ => Err(Error::invalid(
                    format!(
                        "run {} of pipeline `{}` {}: {}",
                        r.run_id,
                        r.pipeline,
                        r.status.label(),
                        r.error.as_deref().unwrap_or("no reason recorded")
                    ),
                    match r.steps.iter().find(|s| s.status == StepStatus::Failed) {
                        Some(s) => format!(
                            "see what it wrote: `strata pipeline runs logs {} {}`; run the pipeline again once fixed (completed steps come from the cache)",
                            r.run_id, s.name
                        ),
                        None => {
                            "run the pipeline again: the steps that completed come from the cache"
                                .to_string()
                        }
                    },
                )),
            }
        }
        PipelineCmd::Cancel { run } => {
            let r = svc.run_cancel(run)?;
            out.done(
                format!(
                    "Asked run {} to stop: its running steps get SIGTERM, and no new step starts.",
                    r.run_id
                ),
                &r,
            );
            Ok(())
        }
        PipelineCmd::Runs(RunsCmd::List { pipeline }) => {
            let runs = svc.run_list(pipeline.as_deref())?;
            out.show(&runs, || {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.run_id.clone(),
                            r.pipeline.clone(),
                            r.stack.clone(),
                            r.status.label().to_string(),
                            super::render::utc(r.started_ms),
                            r.duration_ms.map_or("-".into(), human_ms),
                            format!("{} ({} cached, {} failed)", r.steps, r.cached, r.failed),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "RUN", "PIPELINE", "STACK", "STATUS", "STARTED", "DURATION", "STEPS",
                    ],
                    &rows,
                )
            });
            Ok(())
        }
        PipelineCmd::Runs(RunsCmd::Describe { run }) => {
            let r = svc.run_get(run)?;
            out.show(&r, || run_text(&r));
            Ok(())
        }
        PipelineCmd::Runs(RunsCmd::Logs { run, step }) => {
            let logs = svc.run_logs(run, step.as_deref(), 0)?;
            out.show(&logs, || {
                let mut text = String::new();
                for l in &logs {
                    if step.is_none() {
                        text.push_str(&format!("==> {} <==\n", l.step));
                    }
                    if l.truncated {
                        text.push_str("[… the start was dropped: strata keeps the last 1 MiB]\n");
                    }
                    text.push_str(&l.text);
                    if !l.text.is_empty() && !l.text.ends_with('\n') {
                        text.push('\n');
                    }
                }
                text
            });
            Ok(())
        }
        PipelineCmd::Runs(RunsCmd::Delete {
            run,
            keep_artifacts,
        }) => {
            let r = svc.run_delete(run, *keep_artifacts)?;
            let what = if *keep_artifacts {
                "its record and logs"
            } else {
                "its record, logs and artifacts"
            };
            out.done(
                format!(
                    "Deleted run {} of pipeline `{}` ({what}).",
                    r.run_id, r.pipeline
                ),
                &r,
            );
            Ok(())
        }
    }
}

use crate::model::text::human_ms;

/// A run for a person: what it was, then a row per step, then the artifacts.
fn run_text(r: &RunReport) -> String {
    let mut pairs = vec![
        ("Run".to_string(), r.run_id.clone()),
        ("Pipeline".to_string(), r.pipeline.clone()),
        ("Stack".to_string(), r.stack.clone()),
        ("Status".to_string(), r.status.label().to_string()),
        ("Started".to_string(), super::render::utc(r.started_ms)),
    ];
    if let Some(e) = r.ended_ms {
        pairs.push(("Duration".into(), human_ms(e.saturating_sub(r.started_ms))));
    }
    if !r.orchestrator.is_empty() {
        pairs.push((
            "Orchestrator".into(),
            format!("{} ({})", r.orchestrator, r.launch.detail),
        ));
    }
    if let Some(e) = &r.error {
        pairs.push(("Error".into(), e.clone()));
    }
    for n in &r.notices {
        pairs.push(("Notice".into(), n.clone()));
    }
    let mut text = properties("RUN", &pairs);
    let wave_of = |name: &str| {
        r.launch
            .schedule
            .iter()
            .position(|w| w.iter().any(|s| s == name))
            .map_or("-".to_string(), |i| (i + 1).to_string())
    };
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                wave_of(&s.name),
                s.status.label().to_string(),
                s.duration_ms.map_or("-".into(), human_ms),
                s.exit_code.map_or("-".into(), |c| c.to_string()),
                match (&s.cached_from, &s.error) {
                    (Some(from), _) => format!("outputs of run {from}"),
                    (None, Some(e)) => e.clone(),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    text.push_str(&table(
        &["STEP", "WAVE", "STATUS", "DURATION", "EXIT", "NOTE"],
        &rows,
    ));
    let artifacts: Vec<Vec<String>> = r
        .steps
        .iter()
        .flat_map(|s| {
            s.outputs.iter().map(move |a| {
                vec![
                    format!("{}.{}", s.name, a.name),
                    a.size.to_string(),
                    a.uri.clone(),
                ]
            })
        })
        .collect();
    if !artifacts.is_empty() {
        text.push_str(&table(&["ARTIFACT", "BYTES", "URI"], &artifacts));
    }
    text
}
