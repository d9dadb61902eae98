//! `kpress target`: the built-in HTTP target, serving until Ctrl-C.

use std::process::ExitCode;

use kpress_target::TargetOptions;

use crate::cli::TargetArgs;
use crate::exit::{fail, FAILURE, OK};

pub fn run(args: TargetArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(FAILURE, format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(kpress_target::run_forever(
        args.listen,
        TargetOptions { tls: args.tls },
    )) {
        Ok(()) => ExitCode::from(OK),
        Err(e) => fail(FAILURE, e),
    }
}
