//! `kpress validate`: every check `run` makes before sending anything, and the plan.

use std::process::ExitCode;

use kpress_engine::run::check_split;

use crate::cli::ValidateArgs;
use crate::exit::{fail, OK, USAGE};

pub fn run(args: ValidateArgs) -> ExitCode {
    let spec = match super::run::load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(USAGE, e),
    };

    if args.runners == 0 {
        return fail(USAGE, "--runners must be at least 1");
    }
    if let Err(e) = check_split(&spec, args.runners) {
        return fail(USAGE, e);
    }
    print!("{}", super::run::describe(&spec));
    ExitCode::from(OK)
}
