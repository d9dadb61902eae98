//! The audit's error type: every failure names what it could not read, parse, list or write,
//! because the CLI turns it into the one-line message a user acts on.

use std::path::PathBuf;

/// Why an audit or a prune could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input file is not valid JSON/YAML or holds an object that does not deserialize.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when the parser knows it.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A directory given as input holds no `.json`, `.yaml` or `.yml` file.
    #[error("no .json, .yaml or .yml file in {}", .0.display())]
    NoInput(PathBuf),
    /// No usable client configuration (kubeconfig, context, in-cluster environment).
    #[error("cannot configure a cluster client: {0}")]
    Config(String),
    /// Listing a resource type from the cluster failed.
    #[error("cannot list {what} from the cluster: {source}")]
    List {
        /// The resource type, e.g. `apps/v1 Deployment`.
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// An audited object could not be interpreted as its kind.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The object, e.g. `Service shop/web`.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The backup could not be written, so nothing was deleted.
    #[error("cannot write the backup {}: {source}; nothing was deleted", path.display())]
    Backup {
        /// The backup file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
