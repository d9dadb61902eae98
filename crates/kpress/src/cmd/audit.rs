//! `kpress audit`: not wired yet.
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AuditArgs {}

pub fn run(_args: AuditArgs) -> ExitCode {
    crate::exit::fail(crate::exit::FAILURE, "the audit is not built yet")
}
