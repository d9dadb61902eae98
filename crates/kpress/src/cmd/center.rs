//! `kpress center`: the management center (docs/center.md), serving until Ctrl-C or
//! SIGTERM. The service itself lives in `kpress-center`; this is its flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::exit::{fail, FAILURE, OK, USAGE};

#[derive(Args, Debug)]
pub struct CenterArgs {
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = kpress_center::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The database: `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, value_name = "URL", default_value = "sqlite://kpress.db")]
    pub db: String,
    /// The center's token, required by every call (runners get their own per run).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KPRESS_CENTER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Serve /metrics without a token.
    #[arg(long)]
    pub metrics_public: bool,
    /// The largest request body, e.g. `32MiB`, `512KiB` or a number of bytes.
    #[arg(long, value_name = "SIZE", default_value = "32MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Drive `deployment`-mode runs: create their Deployments, lease their runners
    /// their shares, remove them when done (kubeconfig or in-cluster credentials).
    #[arg(long)]
    pub kubernetes: bool,
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current one).
    #[arg(long, value_name = "NAME", requires = "kubernetes")]
    pub kube_context: Option<String>,
    /// The center's URL as runner pods reach it, e.g. its Service's
    /// `http://kpress-center.kpress.svc:8070/` (default: the listen address).
    #[arg(long, value_name = "URL", requires = "kubernetes")]
    pub runner_url: Option<String>,
    /// A clean-up hook run when a `deployment`-mode run's Deployment is removed:
    /// `NAME=https://...` (a webhook) or `NAME=cmd:PROGRAM ARG...` (repeatable).
    #[arg(
        long = "hook",
        value_name = "NAME=URL|NAME=cmd:PROGRAM",
        requires = "kubernetes"
    )]
    pub hooks: Vec<kpress_center::hooks::Hook>,
    /// Every runner of a `deployment`-mode run must hold its share this long after
    /// registration, or the run fails and is removed.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub startup_timeout: std::time::Duration,
    /// How long after a `deployment`-mode test's longest possible end its runners may
    /// still report before the run is finished without them.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub report_grace: std::time::Duration,
    /// A `deployment`-mode runner that has not polled its lease for this long may lose
    /// its share to a new pod before the start (runners poll 4 times a second).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_lease_ttl)]
    pub lease_ttl: std::time::Duration,
    /// How long after the last share is leased a `deployment`-mode test starts, so that
    /// every runner hears of the start in time.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_start_margin)]
    pub start_margin: std::time::Duration,
    /// Attempts per clean-up hook (1 s between the first two, doubling).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub hook_attempts: u32,
}

pub fn run(args: CenterArgs) -> ExitCode {
    let drive = drive_settings(&args);
    let Some(token) = args.token.filter(|t| !t.is_empty()) else {
        return fail(
            USAGE,
            "the center needs a token: pass --token TOKEN or set KPRESS_CENTER_TOKEN",
        );
    };
    if let Some(name) = duplicate_hook(&args.hooks) {
        return fail(
            USAGE,
            format!("--hook {name}: two hooks have this name; a run's clean-up records each by its name"),
        );
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let config = kpress_center::Config {
        listen: args.listen,
        db: args.db,
        token,
        metrics_public: args.metrics_public,
        max_body: args.max_body,
        kube: args
            .kubernetes
            .then_some(kpress_center::deploy::KubeSettings {
                kubeconfig: args.kubeconfig,
                context: args.kube_context,
                runner_url: args.runner_url,
            }),
        drive,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(FAILURE, format!("cannot start the runtime: {e}")),
    };
    let served = runtime.block_on(async {
        let server = kpress_center::Server::bind(&config).await?;
        eprintln!(
            "kpress center: listening on http://{}",
            server.local_addr()?
        );
        server.run(kpress_center::shutdown_signal()).await
    });
    match served {
        Ok(()) => ExitCode::from(OK),
        Err(kpress_center::Error::NoToken) => fail(USAGE, kpress_center::Error::NoToken),
        Err(e) => fail(FAILURE, e),
    }
}

/// The first hook name given twice, if any.
fn duplicate_hook(hooks: &[kpress_center::hooks::Hook]) -> Option<&str> {
    hooks
        .iter()
        .enumerate()
        .find(|(i, h)| hooks[..*i].iter().any(|e| e.name == h.name))
        .map(|(_, h)| h.name.as_str())
}

/// The defaults with the flags' timing and hooks.
fn drive_settings(args: &CenterArgs) -> kpress_center::deploy::DriveSettings {
    let defaults = kpress_center::deploy::DriveSettings::default();
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    kpress_center::deploy::DriveSettings {
        timing: kpress_center::store::LeaseTiming {
            ttl_ms: ms(args.lease_ttl),
            start_margin_ms: ms(args.start_margin),
            report_grace_ms: ms(args.report_grace),
        },
        startup_timeout: args.startup_timeout,
        hooks: args.hooks.clone(),
        hook_retry: kpress_center::hooks::RetryPolicy {
            attempts: args.hook_attempts,
            ..defaults.hook_retry
        },
        ..defaults
    }
}

/// A lease time to live: several of the runners' polls long, so that one late poll
/// does not cost a runner its share.
fn parse_lease_ttl(s: &str) -> Result<std::time::Duration, String> {
    at_least(s, std::time::Duration::from_secs(2))
}

/// A start margin: long enough for every runner to poll once more before the start.
fn parse_start_margin(s: &str) -> Result<std::time::Duration, String> {
    at_least(s, std::time::Duration::from_secs(1))
}

fn at_least(s: &str, min: std::time::Duration) -> Result<std::time::Duration, String> {
    let d = crate::cli::parse_duration(s)?;
    if d < min {
        return Err(format!("`{s}` is too short: at least {}s", min.as_secs()));
    }
    Ok(d)
}

/// `32MiB`, `512KiB`, `1MB`, `4096`: a size in bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 32MiB, 512KiB, 4096)"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => return Err(format!("`{s}`: unknown unit `{other}` (use KiB, MiB, GiB)")),
    };
    match n.checked_mul(factor) {
        Some(0) => Err(format!("`{s}`: the limit must be more than 0 bytes")),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_must_differ() {
        let parse = |specs: &[&str]| -> Vec<kpress_center::hooks::Hook> {
            specs
                .iter()
                .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
                .collect()
        };
        assert_eq!(duplicate_hook(&parse(&["a=cmd:true", "b=cmd:true"])), None);
        assert_eq!(
            duplicate_hook(&parse(&[
                "a=cmd:true",
                "b=cmd:true",
                "a=https://example.invalid/"
            ])),
            Some("a")
        );
    }

    #[test]
    fn lease_timings_have_floors() {
        assert_eq!(
            parse_lease_ttl("10s"),
            Ok(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            parse_start_margin("1s"),
            Ok(std::time::Duration::from_secs(1))
        );
        for (parse, short) in [
            (parse_lease_ttl as fn(&str) -> Result<_, _>, "1500ms"),
            (parse_start_margin, "500ms"),
        ] {
            let err = parse(short).expect_err(short);
            assert!(err.contains("too short"), "{err}");
        }
        assert!(parse_lease_ttl("ten").is_err());
    }

    #[test]
    fn the_timing_flags_reach_the_driver() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            center: CenterArgs,
        }
        let cli = Cli::try_parse_from([
            "center",
            "--kubernetes",
            "--lease-ttl",
            "30s",
            "--start-margin",
            "5s",
            "--report-grace",
            "2m",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let timing = drive_settings(&cli.center).timing;
        assert_eq!(
            (
                timing.ttl_ms,
                timing.start_margin_ms,
                timing.report_grace_ms
            ),
            (30_000, 5_000, 120_000)
        );
    }

    #[test]
    fn sizes_parse_with_their_units() {
        for (given, want) in [
            ("32MiB", 32 << 20),
            ("512KiB", 512 << 10),
            ("1mb", 1_000_000),
            ("4096", 4096),
            ("2 GiB", 2 << 30),
        ] {
            assert_eq!(parse_size(given), Ok(want), "{given}");
        }
        for bad in ["", "MiB", "12XB", "0", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
