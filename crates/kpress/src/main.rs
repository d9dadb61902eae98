//! The `kpress` binary: argument parsing and wiring only; the work lives in the crates.

mod cli;
mod cmd;
mod exit;
mod live;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => cmd::run::run(args),
        cli::Command::Validate(args) => cmd::validate::run(args),
        cli::Command::Merge(args) => cmd::merge::run(args),
        cli::Command::Target(args) => cmd::target::run(args),
        cli::Command::Render(args) => cmd::render::run(args),
        cli::Command::Submit(args) => cmd::submit::run(args),
        cli::Command::List(args) => cmd::submit::list(args),
        cli::Command::Delete(args) => cmd::submit::delete(args),
        cli::Command::Audit(args) => cmd::audit::run(args),
        cli::Command::Center(args) => cmd::center::run(args),
    }
}
