//! The `strata` command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use strata::cli;
use strata::error::ErrorKind;

fn main() -> ExitCode {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts, so
    // that `strata … | head` ends quietly instead of panicking on a closed pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::normalize_args(std::env::args().collect());
    let parsed = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli::run::run(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let label = if color {
                "\x1b[1;31merror\x1b[0m"
            } else {
                "error"
            };
            eprintln!("{label}: {e}");
            let hint = e.hint();
            if !hint.is_empty() {
                let h = if color {
                    "\x1b[1;36mhint\x1b[0m"
                } else {
                    "hint"
                };
                eprintln!("\n{h}: {hint}");
            }
            ExitCode::from(if e.kind() == ErrorKind::Internal {
                2
            } else {
                1
            })
        }
    }
}
