//! The exit codes scripts and CI depend on (DESIGN.md, a contract).

use std::process::ExitCode;

/// The test ran and every threshold held.
pub const OK: u8 = 0;
/// Runtime failure: the run could not complete (interrupted, every runner failed...).
pub const FAILURE: u8 = 1;
/// Invalid input or usage; nothing was sent.
pub const USAGE: u8 = 2;
/// The test ran but thresholds were crossed (k6's code, so CI scripts port).
pub const THRESHOLDS: u8 = 99;

/// Prints `message` as an error and returns `code`.
pub fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kpress: {message}");
    ExitCode::from(code)
}

/// The exit code for a summary's verdict.
pub fn of_summary(code: i32) -> ExitCode {
    match code {
        0 => ExitCode::from(OK),
        99 => ExitCode::from(THRESHOLDS),
        _ => ExitCode::from(FAILURE),
    }
}
