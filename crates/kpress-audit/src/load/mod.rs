//! Filling the inventory: from files (`kubectl get -o json|yaml` output) or from a live cluster
//! through `kube::Client`. Both paths end in [`Inventory::insert`], so the rules cannot tell
//! them apart, which is what makes the offline audit of a dump trustworthy.

mod cluster;
mod files;

pub use cluster::load_cluster;
pub use files::load_files;
