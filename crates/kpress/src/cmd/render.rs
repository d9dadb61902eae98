//! `kpress render`: the manifests `submit` would create, as YAML, for review, GitOps or
//! `kubectl apply`; nothing is sent to a cluster.

use std::process::ExitCode;

use kpress_engine::run::check_split;
use kpress_engine::summary;
use kpress_k8s::job::{self, JobOptions};

use crate::cli::{ClusterArgs, ClusterMode, RenderArgs};
use crate::exit::{fail, FAILURE, OK, USAGE};

pub fn run(args: RenderArgs) -> ExitCode {
    let spec = match super::run::load_scenario(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(USAGE, e),
    };
    if args.cluster.mode == ClusterMode::Deployment {
        return super::deployment::render(&args, &spec);
    }
    let options = match job_options(&args.cluster, &spec) {
        Ok(o) => o,
        Err(e) => return fail(USAGE, e),
    };
    match kpress_k8s::to_yaml(&[job::build(&spec, &options)]) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::from(OK)
        }
        Err(e) => fail(FAILURE, e),
    }
}

/// The Job options from the flags, after checking the test splits into the runners.
pub fn job_options(
    c: &ClusterArgs,
    spec: &kpress_engine::scenario::TestSpec,
) -> Result<JobOptions, String> {
    if c.runners == 0 {
        return Err("--runners must be at least 1".into());
    }
    check_split(spec, c.runners.into()).map_err(|e| e.to_string())?;
    let run_id = c.run_id.clone().unwrap_or_else(summary::new_run_id);
    if run_id.is_empty()
        || run_id.len() > 20
        || !run_id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
    {
        return Err(format!(
            "--run-id `{run_id}`: use 1-20 lowercase letters and digits"
        ));
    }
    let mut o = JobOptions::new(c.runners, &run_id);
    o.image = c.image.clone();
    o.namespace = c.namespace.clone();
    o.app = c.app.clone();
    o.ttl_after_finished = c.ttl;
    o.startup_allowance = c.startup_allowance;
    o.retries_per_index = c.retries;
    (o.cpu_request, o.cpu_limit) = c.cpu.clone();
    (o.memory_request, o.memory_limit) = c.memory.clone();
    o.spread = c.spread;
    o.node_selector = c.node_selector.iter().cloned().collect();
    o.tolerations = c.toleration.clone();
    Ok(o)
}
