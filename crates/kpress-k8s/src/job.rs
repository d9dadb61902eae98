//! The one object a test creates: an Indexed Job of N runner pods, built from typed
//! k8s-openapi structs. No Service, Ingress, PVC or per-test DNS name; the scenario
//! travels in the pod spec; the pods get no API credentials; finished Jobs expire. The
//! runners of Deployment-only mode ([`crate::deployment`]) run the same hardened pod.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EnvVar,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, Toleration, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kpress_engine::scenario::TestSpec;

use crate::labels::{self, AppLabel};

/// Where the pod's downward-API volume is mounted; the runner waits for the start
/// instant to appear in `start-at` there.
pub const POD_INFO_DIR: &str = "/etc/kpress/pod";
pub const CONTAINER: &str = "runner";
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/kpress/kpress:", env!("CARGO_PKG_VERSION"));

/// Everything `render` and `submit` take besides the scenario; also the options of a
/// runner Deployment ([`crate::deployment::build`]), which ignores `ttl_after_finished`
/// and `retries_per_index`.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub runners: u32,
    pub image: String,
    pub namespace: String,
    pub app: AppLabel,
    pub run_id: String,
    /// How long a finished Job stays before Kubernetes deletes it.
    pub ttl_after_finished: Duration,
    /// Time allowed for pods to schedule, pull and start, added to the test's length
    /// for `activeDeadlineSeconds` (a Deployment's `progressDeadlineSeconds`).
    pub startup_allowance: Duration,
    /// Retries per runner index after a failure that is not a disruption.
    pub retries_per_index: u32,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Spread runners over nodes (topology spread on the hostname).
    pub spread: bool,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    /// More environment for the runners (a management center's URL and the run's
    /// runner token, when results also go there).
    pub env: Vec<(String, String)>,
}

impl JobOptions {
    pub fn new(runners: u32, run_id: &str) -> JobOptions {
        JobOptions {
            runners,
            image: DEFAULT_IMAGE.into(),
            namespace: "default".into(),
            app: AppLabel::default(),
            run_id: run_id.into(),
            ttl_after_finished: Duration::from_secs(3600),
            startup_allowance: Duration::from_secs(300),
            retries_per_index: 1,
            cpu_request: "500m".into(),
            cpu_limit: "1".into(),
            memory_request: "128Mi".into(),
            memory_limit: "256Mi".into(),
            spread: false,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The Job's name: `kpress-<test>-<run>`, within the 63 characters a Job name (and the
/// `job-name` label its pods get) may have.
pub fn job_name(test: &str, run: &str) -> String {
    let mut name = format!("kpress-{test}-{run}");
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// Exit code of a runner given invalid input: the Job fails at once instead of retrying.
const EXIT_USAGE: i32 = 2;

/// Parses a toleration written `KEY[=VALUE]:EFFECT` (or `KEY:EFFECT` for Exists).
pub fn parse_toleration(s: &str) -> Result<Toleration, String> {
    let (kv, effect) = s.rsplit_once(':').ok_or_else(|| {
        format!("`{s}`: write KEY[=VALUE]:EFFECT, e.g. dedicated=load:NoSchedule")
    })?;
    if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
        return Err(format!(
            "`{s}`: effect `{effect}` is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value, operator) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string()), "Equal"),
        None => (kv, None, "Exists"),
    };
    if key.is_empty() {
        return Err(format!("`{s}`: the key is empty"));
    }
    Ok(Toleration {
        key: Some(key.into()),
        operator: Some(operator.into()),
        value,
        effect: Some(effect.into()),
        ..Toleration::default()
    })
}

/// Builds the Job for `spec`.
pub fn build(spec: &TestSpec, opts: &JobOptions) -> Job {
    let labels = labels::runner_labels(&opts.app, &spec.name, &opts.run_id);
    let deadline = spec.max_duration() + opts.startup_allowance;
    let runners = opts.runners.to_string();
    let pod = runner_pod(
        opts,
        &[
            "run",
            "env:KPRESS_SCENARIO",
            "--runners",
            &runners,
            "--run-id",
            &opts.run_id,
            "--progress",
            "jsonl",
            "--summary-out",
            "-",
        ],
        vec![
            env_var("KPRESS_SCENARIO", &spec.source),
            env_var("KPRESS_POD_INFO_DIR", POD_INFO_DIR),
        ],
        "Never",
        true,
    );
    Job {
        metadata: runner_metadata(spec, job_name(&spec.name, &opts.run_id), opts, &labels),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(opts.runners as i32),
            parallelism: Some(opts.runners as i32),
            backoff_limit_per_index: Some(opts.retries_per_index as i32),
            active_deadline_seconds: Some(deadline.as_secs().max(1) as i64),
            ttl_seconds_after_finished: Some(opts.ttl_after_finished.as_secs() as i32),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![
                    PodFailurePolicyRule {
                        action: "FailJob".into(),
                        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                            container_name: Some(CONTAINER.into()),
                            operator: "In".into(),
                            values: vec![EXIT_USAGE],
                        }),
                        ..PodFailurePolicyRule::default()
                    },
                    PodFailurePolicyRule {
                        action: "Ignore".into(),
                        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                            type_: "DisruptionTarget".into(),
                            status: Some("True".into()),
                        }]),
                        ..PodFailurePolicyRule::default()
                    },
                ],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// A plain `NAME=value` environment variable.
pub(crate) fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// The metadata of a runner workload: its name, namespace, labels and the scenario's
/// description.
pub(crate) fn runner_metadata(
    spec: &TestSpec,
    name: String,
    opts: &JobOptions,
    labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(opts.namespace.clone()),
        labels: Some(labels.clone()),
        annotations: spec
            .description
            .as_ref()
            .map(|d| BTreeMap::from([("kpress.io/description".to_string(), d.clone())])),
        ..ObjectMeta::default()
    }
}

/// The hardened runner pod every workload kind shares (non-root, read-only root
/// filesystem, no capabilities, no API credentials, no service links), running `kpress
/// args` with `env` then `opts.env`. `pod_info` mounts the downward-API volume through
/// which a Job's runners learn their start instant.
pub(crate) fn runner_pod(
    opts: &JobOptions,
    args: &[&str],
    env: Vec<EnvVar>,
    restart_policy: &str,
    pod_info: bool,
) -> PodSpec {
    let container = Container {
        name: CONTAINER.into(),
        image: Some(opts.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["kpress".into()]),
        args: Some(args.iter().map(|s| s.to_string()).collect()),
        env: Some(
            env.into_iter()
                .chain(opts.env.iter().map(|(name, value)| env_var(name, value)))
                .collect(),
        ),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(opts.cpu_request.clone())),
                ("memory".to_string(), Quantity(opts.memory_request.clone())),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(opts.cpu_limit.clone())),
                ("memory".to_string(), Quantity(opts.memory_limit.clone())),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: pod_info.then(|| {
            vec![VolumeMount {
                name: "pod-info".into(),
                mount_path: POD_INFO_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    PodSpec {
        restart_policy: Some(restart_policy.into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: pod_info.then(|| {
            vec![Volume {
                name: "pod-info".into(),
                downward_api: Some(DownwardAPIVolumeSource {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "start-at".into(),
                        field_ref: Some(ObjectFieldSelector {
                            field_path: format!("metadata.annotations['{}']", labels::START_AT),
                            ..ObjectFieldSelector::default()
                        }),
                        ..DownwardAPIVolumeFile::default()
                    }]),
                    ..DownwardAPIVolumeSource::default()
                }),
                ..Volume::default()
            }]
        }),
        node_selector: (!opts.node_selector.is_empty()).then(|| opts.node_selector.clone()),
        tolerations: (!opts.tolerations.is_empty()).then(|| opts.tolerations.clone()),
        topology_spread_constraints: opts.spread.then(|| {
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        labels::RUN.to_string(),
                        opts.run_id.clone(),
                    )])),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]
        }),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    }
}

/// Whether `q` is a Kubernetes resource quantity (`500m`, `1`, `1.5`, `256Mi`, `1e3`).
pub fn valid_quantity(q: &str) -> bool {
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    let number_ok = !number.is_empty() && number.parse::<f64>().is_ok();
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || (suffix.starts_with(['e', 'E']) && suffix[1..].parse::<i32>().is_ok());
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_tolerations() {
        for q in ["500m", "1", "1.5", "256Mi", "2Gi", "1e3"] {
            assert!(valid_quantity(q), "{q}");
        }
        for q in ["", "m", "1x", "1.2.3", "-1", "Mi"] {
            assert!(!valid_quantity(q), "{q}");
        }
        let t = parse_toleration("dedicated=load:NoSchedule").unwrap_or_default();
        assert_eq!(
            (t.key.as_deref(), t.value.as_deref(), t.operator.as_deref()),
            (Some("dedicated"), Some("load"), Some("Equal"))
        );
        assert_eq!(
            parse_toleration("gpu:NoExecute").map(|t| t.operator),
            Ok(Some("Exists".into()))
        );
        assert!(parse_toleration("x:Never").is_err());
        assert!(parse_toleration("nocolon").is_err());
    }

    #[test]
    fn job_names_fit_kubernetes_limits() {
        let long = "a".repeat(40);
        let name = job_name(&long, "0123456789");
        assert!(name.len() <= 63);
        assert!(!name.ends_with('-'));
        assert_eq!(job_name("checkout", "abc"), "kpress-checkout-abc");
    }
}
