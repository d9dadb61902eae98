//! kpress on Kubernetes. A test is one Indexed Job of N runner pods, each running
//! `kpress run` on its segment (from `JOB_COMPLETION_INDEX`). `render` prints it;
//! `submit` creates it, follows the pods, publishes a common start instant through
//! each pod's downward-API volume (the pods need no API credentials and no Service),
//! collects every runner's summary from its log, merges them exactly and deletes the
//! Job. Where only Deployments are allowed, [`deployment`] runs a test as one
//! Deployment whose runners a management center coordinates. Everything talks to
//! `kube::Client`, so the same code runs against a cluster and against the API double
//! in the tests.

pub mod deployment;
pub mod job;
pub mod labels;
pub mod pods;
pub mod runs;
pub mod submit;

/// The manifests of one test (Jobs, Deployments, any Kubernetes objects) as
/// multi-document YAML.
pub fn to_yaml<T: serde::Serialize>(objects: &[T]) -> Result<String, String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(
            &serde_norway::to_string(object)
                .map_err(|e| format!("cannot serialise the manifest: {e}"))?,
        );
    }
    Ok(out)
}

/// A client from the usual configuration: `KUBECONFIG` (or `~/.kube/config`) with
/// `context` or its current context, else the in-cluster service account.
pub async fn connect(context: Option<&str>) -> Result<kube::Client, String> {
    connect_to(None, context).await
}

/// [`connect`], reading the kubeconfig file `kubeconfig` when one is given.
pub async fn connect_to(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Client, String> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| e.to_string())?,
        (None, None) => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|e| format!("{url}: {e}"))
}
