//! The `strata` command.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod scaffold;

// The paths the CLI's modules were written with, from when strata was one crate.
#[allow(unused_imports)]
use strata::{self as client, api, error, home, model, service, store};
use strata_server as daemon;

fn main() -> ExitCode {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts, so
    // that `strata … | head` ends quietly instead of panicking on a closed pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // An argument that is not UTF-8 (a stray C1 byte, say) is refused, shown escaped.
    let mut args = Vec::new();
    for a in std::env::args_os() {
        match a.into_string() {
            Ok(a) => args.push(a),
            Err(bad) => {
                eprint!(
                    "{}",
                    cli::run::render_error(
                        &strata::Error::invalid(
                            format!("the argument {bad:?} is not valid UTF-8"),
                            "strata takes names, keys and values as UTF-8 text: give the argument as printable text",
                        ),
                        cli::run::stderr_color(),
                    )
                );
                return ExitCode::from(1);
            }
        }
    }
    let args = cli::normalize_args(args);
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            match cli::run::escaped_usage_error(&e, &args) {
                Some(text) if e.use_stderr() => eprint!("{text}"),
                Some(text) => print!("{text}"),
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(code);
        }
    };
    ExitCode::from(cli::run::main(parsed))
}
