//! Saying what a flavor is doing: one line to strata's log per call of [`write()`], or of
//! the [`debug!`](crate::debug), [`info!`](crate::info), [`warn!`](crate::warn) and
//! [`error!`](crate::error) macros, which take `format!` arguments.
//!
//! ```
//! use strata_flavor_sdk::{info, log};
//!
//! info!("created {}", "/data/alerts.log");
//! // Built for anything but WebAssembly (a unit test), the line is kept on this thread.
//! # #[cfg(not(target_arch = "wasm32"))]
//! assert_eq!(log::take(), [(log::Level::Info, "created /data/alerts.log".to_string())]);
//! ```
//!
//! In the sandbox a line goes to strata (the `log` function of `strata:flavor/host`),
//! which keeps it with the call's outcome and shows it with `--verbose`. A flavor has no
//! standard output or error: `println!` goes nowhere. strata cuts a line past 4 KiB, and
//! drops (and counts) the lines of one call after 256 of them or 64 KiB.
//!
//! Built for any other target, as the flavor's unit tests are, there is no host to write
//! to: the lines are kept on the calling thread, and [`take`] returns them, so a test can
//! check what a call said.

pub use crate::bindings::strata::flavor::types::Level;
pub use crate::{debug, error, info, warn};

/// Writes `message` to strata's log at `level` (on WebAssembly), or keeps it for
/// [`take`] (anywhere else).
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::strata::flavor::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    RECORDED.with(|lines| lines.borrow_mut().push((level, message.to_string())));
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static RECORDED: std::cell::RefCell<Vec<(Level, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The lines written on this thread since the last `take`, oldest first, and forgets
/// them. Only outside WebAssembly, where there is no host to send them to.
#[cfg(not(target_arch = "wasm32"))]
pub fn take() -> Vec<(Level, String)> {
    RECORDED.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
}

/// Writes a `debug` line to strata's log: `debug!("read {} bytes", n)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Writes an `info` line to strata's log: `info!("created {}", path.display())`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Writes a `warn` line to strata's log: `warn!("{} is not empty, kept it", dir)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Writes an `error` line to strata's log. A call that fails should return an
/// [`Error`](crate::Error) too: the log line alone does not fail it.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_in_order_per_thread_and_taken_once() {
        take();
        debug!("one {}", 1);
        info!("two");
        warn!("three {x}", x = 3);
        error!("four");
        let lines = take();
        let levels: Vec<Level> = lines.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            levels,
            [Level::Debug, Level::Info, Level::Warn, Level::Error]
        );
        assert_eq!(lines[0].1, "one 1");
        assert_eq!(lines[2].1, "three 3");
        assert!(take().is_empty());
        std::thread::spawn(|| info!("elsewhere")).join().unwrap();
        assert!(take().is_empty(), "another thread's lines are its own");
    }
}
