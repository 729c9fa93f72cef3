//! Questions asked on the terminal by `-i`: a component's configuration fields, and a
//! secret's keys and values, the values read with echo off.
//!
//! The echo handling is written here, on termios, and not taken from `rpassword` or
//! `dialoguer`, because each breaks both guarantees `ask_secret_values` keeps (the pty
//! test `terminal::interactive_secret_values_are_never_echoed` and
//! `terminal::ctrl_c_at_a_secret_prompt_gives_the_terminal_its_echo_back`):
//!
//! 1. Echo goes off before the prompt shows, so nothing typed once the prompt is on the
//!    screen can be echoed. rpassword 7.5.4 writes the prompt first
//!    (`prompt_password_with_config`, src/lib.rs line 287) and turns echo off only when
//!    it starts reading (`apply_terminal_configuration`, src/unix.rs line 133).
//!    dialoguer 0.12.0 does the same (`Password::interact`, src/prompts/password.rs
//!    line 136 shows the prompt, line 139 calls console 0.16.6 `read_secure_line`, which
//!    clears ECHO at src/unix_term.rs line 137).
//! 2. Ctrl-C (or SIGTERM) while echo is off gives the terminal back its settings before
//!    the process ends. rpassword 7.5.4 reads Ctrl-C as a character and calls
//!    `raise(SIGINT)` (src/lib.rs line 134, src/unix.rs line 163) while the terminal is
//!    still raw: the default action ends the process before `RawModeInput`'s `Drop`
//!    restores it, and the shell is left without echo or line editing. console 0.16.6
//!    keeps ISIG, so the SIGINT ends the process before it restores the settings
//!    (src/unix_term.rs line 143). Neither handles SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};
use crate::model::FlavorRecord;
use crate::model::text::visible;

/// Walks every field not given on the command line; Enter keeps the default.
pub(crate) fn ask_fields(f: &FlavorRecord, config: &mut BTreeMap<String, String>) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "`-i` asks questions on a terminal, and standard input is not one",
            "give the configuration as --KEY=VALUE instead",
        ));
    }
    let stdin = std::io::stdin();
    let missing: Vec<&crate::model::FieldSpec> = f
        .info
        .config
        .iter()
        .filter(|s| !config.contains_key(&s.name))
        .collect();
    for spec in missing {
        let default = spec
            .default
            .as_deref()
            .map(|d| format!(" [{}]", visible(d)))
            .unwrap_or_default();
        let need = if spec.required && spec.default.is_none() {
            ", required"
        } else {
            ""
        };
        eprint!(
            "{} ({}{need}): {}{default}\n> ",
            spec.name,
            spec.kind.as_str(),
            visible(&spec.description)
        );
        let _ = std::io::stderr().flush();
        let line = read_answer(&stdin)?;
        let answer = line.trim();
        if !answer.is_empty() {
            config.insert(spec.name.clone(), answer.to_string());
        }
    }
    Ok(())
}

/// Asks for keys and values on the terminal; values are read without echo.
pub(crate) fn ask_secret_values(values: &mut BTreeMap<String, String>) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "`-i` asks for the values on a terminal, and standard input is not one",
            "give the values as --KEY=VALUE or --values=@FILE.yaml instead",
        ));
    }
    let stdin = std::io::stdin();
    // Echo goes off before the prompt shows, so nothing typed after it is ever echoed.
    let ask = |prompt: &str, hidden: bool| -> Result<String> {
        let _echo = match hidden {
            true => Some(EchoOff::new().ok_or_else(|| {
                Error::invalid(
                    "cannot turn off the terminal's echo, so a typed value would show",
                    "give the values with --values=@FILE.yaml instead",
                )
            })?),
            false => None,
        };
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        read_answer(&stdin)
    };
    loop {
        let key = ask("key (Enter when done): ", false)?.trim().to_string();
        if key.is_empty() {
            break;
        }
        let value = ask(&format!("value of `{}` (not shown): ", visible(&key)), true)?;
        values.insert(key, value);
    }
    Ok(())
}

/// Asks for one value on the terminal without echoing it (a token).
pub(crate) fn ask_hidden(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "the token is asked for on a terminal, and standard input is not one",
            "give it with `--token TOKEN` or in STRATA_TOKEN",
        ));
    }
    let _echo = EchoOff::new().ok_or_else(|| {
        Error::invalid(
            "cannot turn off the terminal's echo, so the token would show",
            "give it with `--token TOKEN` or in STRATA_TOKEN",
        )
    })?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let answer = read_answer(&std::io::stdin());
    eprintln!();
    answer
}

/// Asks for every field of a `kind` service connector not given yet; credentials are
/// read without echo.
pub(crate) fn ask_connector_fields(
    kind: &str,
    values: &mut BTreeMap<String, String>,
) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "`-i` asks for the values on a terminal, and standard input is not one",
            "give the values as --KEY=VALUE instead",
        ));
    }
    let fields = crate::service::connectors::connector_fields(kind)?;
    let stdin = std::io::stdin();
    let missing: Vec<_> = fields
        .iter()
        .filter(|f| !values.contains_key(f.name))
        .collect();
    for f in missing {
        let _echo = match f.secret {
            true => Some(EchoOff::new().ok_or_else(|| {
                Error::invalid(
                    "cannot turn off the terminal's echo, so a typed credential would show",
                    "give the values as --KEY=VALUE instead",
                )
            })?),
            false => None,
        };
        let default = f.default.map(|d| format!(" [{d}]")).unwrap_or_default();
        let need = if f.required { ", required" } else { "" };
        let hidden = if f.secret { ", not shown" } else { "" };
        eprint!("{}{need}{hidden}: {}{default}\n> ", f.name, f.description);
        let _ = std::io::stderr().flush();
        let line = read_answer(&stdin)?;
        if f.secret {
            eprintln!();
        }
        let answer = line.trim().to_string();
        if !answer.is_empty() {
            values.insert(f.name.to_string(), answer);
        }
    }
    Ok(())
}

/// One line typed on standard input, without its line ending.
fn read_answer(stdin: &std::io::Stdin) -> Result<String> {
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading an answer", e))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off on standard input until dropped. Ctrl-C while it is off
/// restores the terminal before the process ends, so the shell never stays silent.
struct EchoOff(libc::termios);

/// The terminal settings to restore if SIGINT or SIGTERM arrives while echo is off.
static SAVED_TERMIOS: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

extern "C" fn restore_terminal_and_die(sig: libc::c_int) {
    // SAFETY: tcsetattr, signal and raise are async-signal-safe; SAVED_TERMIOS is
    // written once, before this handler is installed.
    unsafe {
        if let Some(t) = SAVED_TERMIOS.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

impl EchoOff {
    /// `None` when echo could not be turned off: the caller must not ask for a secret.
    fn new() -> Option<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it, and we only pass it back.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return None;
            }
            let saved = t;
            let _ = SAVED_TERMIOS.set(saved);
            let handler = restore_terminal_and_die as extern "C" fn(libc::c_int);
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
            libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`, then the default signal handling.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }
}
