//! `rust-alerter`, a strata alerter on the Rust SDK (what `examples/python-alerter` does):
//! it checks its configuration, keeps `alerts.log` in the directory its `path` field
//! grants, appends an alert for every pipeline run, and counts its resumes in its state.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_flavor_sdk::prelude::*;

const LEVELS: [&str; 3] = ["info", "warning", "error"];

struct RustAlerter;

struct Settings {
    channel: String,
    min_level: usize, // index in LEVELS of the least serious alert written
    log: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct Counts {
    #[serde(default)]
    resumed: u32,
}

impl Flavor for RustAlerter {
    type Settings = Settings;
    type State = Counts;

    fn info() -> Info {
        Info::new("rust-alerter", ComponentType::Alerter)
            .version(env!("CARGO_PKG_VERSION"))
            .description("Writes alerts for a channel to alerts.log in a local directory.")
            .field(Field::text("channel", "Where alerts go: a-z, 0-9, - and _.").required())
            .field(Field::text("min_level", "info, warning or error.").default("info"))
            .field(Field::path("path", "Directory where alerts.log is written.").required())
    }

    fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
        let channel = config.get("channel").unwrap_or_default().to_string();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c);
        if channel.is_empty() || !channel.chars().all(allowed) {
            let message = format!("`{channel}` is not a channel name: use a-z, 0-9, - and _");
            problems.field("channel", message);
        }
        let min_level = problems.check("min_level", config.require_one_of("min_level", &LEVELS));
        let log = problems
            .check("path", config.require_path("path"))?
            .join("alerts.log");
        Some(Settings {
            min_level: min_level?,
            channel,
            log,
        })
    }

    fn provision(call: &mut Call<'_, Self>) -> Result<()> {
        let log = &call.settings.log;
        if !log.exists() {
            let header = format!("alerts for #{}\n", call.settings.channel);
            fs::write(log, header).context(format!("cannot write {}", log.display()))?;
            info!("created {}", log.display());
        }
        Ok(())
    }

    fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
        match fs::remove_file(&call.settings.log) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e).context("cannot remove alerts.log"),
            _ => Ok(()),
        }
    }

    fn resume(call: &mut Call<'_, Self>) -> Result<()> {
        call.state.resumed += 1;
        Ok(())
    }

    fn status(call: &Call<'_, Self>) -> Status {
        let Ok(text) = fs::read_to_string(&call.settings.log) else {
            return Status::not_provisioned("alerts.log is missing");
        };
        let alerts = text.lines().filter(|line| line.starts_with('[')).count();
        let (running, resumed) = (call.phase().running, call.state.resumed);
        let phase = if running { "running" } else { "suspended" };
        let detail = format!("alerts.log holds {alerts} alerts; {phase}, resumed {resumed} times");
        Status::provisioned(running, detail)
    }

    fn prepare_pipeline_deployment(call: &Call<'_, Self>, runtime: &Config<'_>) -> Result<()> {
        if call.settings.min_level > 0 {
            return Ok(()); // a run starting is an `info` alert
        }
        // The user's parameters; strata's own (`strata.run_id`, …) are left out.
        let params = runtime
            .pairs()
            .iter()
            .filter(|(k, _)| !k.starts_with("strata."))
            .map(|(k, v)| format!("{k}={v}"));
        let params = params.collect::<Vec<_>>().join(", ");
        let provision = format!("run {} to provision the alerter", call.command("up"));
        let opened = OpenOptions::new().append(true).open(&call.settings.log);
        let mut log = opened.hint(provision)?;
        let channel = &call.settings.channel;
        writeln!(log, "[info] #{channel}: a pipeline run starts ({params})")
            .context("cannot append to alerts.log")
    }
}

strata_flavor_sdk::export!(RustAlerter);
