//! Services that route to nothing. Their DNS records stay in every resolver and, in iptables
//! mode, kube-proxy keeps a REJECT rule per port on every node; a LoadBalancer keeps a billed
//! cloud load balancer and a NodePort keeps a port open on every node.
//!
//! Not leftovers: ExternalName Services (no endpoints by design), selector-less Services whose
//! endpoints someone manages by hand (an Endpoints or EndpointSlice object exists, even empty),
//! Services with `publishNotReadyAddresses` that have any endpoint, and Services whose selector
//! matches a running/pending pod or a workload that wants replicas: that is an outage, not a
//! leftover, and deleting its Service would make the outage permanent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use super::{owned, templates_in, Candidate, Category, RuleResult, Skipped};
use crate::cost::Holds;
use crate::model::{Inventory, Kind};
use crate::refs::{ns_of, NsName};
use crate::selector::{map_matches, render};

/// What the endpoint objects of one Service say.
#[derive(Debug, Default, Clone, Copy)]
struct Endpoints {
    /// An Endpoints or EndpointSlice object exists.
    managed: bool,
    /// Some endpoint is ready (or serving while terminating).
    ready: bool,
    /// Some endpoint exists, ready or not.
    any: bool,
}

fn endpoint_index(inv: &Inventory) -> BTreeMap<NsName, Endpoints> {
    let mut index: BTreeMap<NsName, Endpoints> = BTreeMap::new();
    for slice in &inv.endpoint_slices {
        let labels = slice.metadata.labels.as_ref();
        let Some(service) = labels.and_then(|l| l.get("kubernetes.io/service-name")) else {
            continue;
        };
        let entry = index.entry((ns_of(slice), service.clone())).or_default();
        entry.managed = true;
        for endpoint in slice.endpoints.iter().flatten() {
            let conditions = endpoint.conditions.as_ref();
            // The API defines a nil `ready` as ready; kube-proxy also routes to endpoints that
            // are still serving while terminating when nothing else is ready.
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            entry.any |= !endpoint.addresses.is_empty();
            entry.ready |= !endpoint.addresses.is_empty() && (ready || serving);
        }
    }
    for endpoints in &inv.endpoints {
        let name = endpoints.metadata.name.clone().unwrap_or_default();
        let entry = index.entry((ns_of(endpoints), name)).or_default();
        entry.managed = true;
        for subset in endpoints.subsets.iter().flatten() {
            let ready = subset.addresses.as_ref().is_some_and(|a| !a.is_empty());
            let not_ready = subset
                .not_ready_addresses
                .as_ref()
                .is_some_and(|a| !a.is_empty());
            entry.ready |= ready;
            entry.any |= ready || not_ready;
        }
    }
    index
}

/// Whether a Service can receive traffic, as the Ingress rule also needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// Has a usable endpoint, is ExternalName, or its endpoints are managed by hand.
    Serving,
    /// Has no usable endpoint but selects pods or workloads that should provide one.
    Outage,
    /// Routes to nothing, and nothing is going to change that; the reason says why.
    Empty(String),
}

/// Judges Services against the inventory's endpoint objects, pods and workloads.
pub(crate) struct Judge<'a> {
    inv: &'a Inventory,
    endpoints: BTreeMap<NsName, Endpoints>,
    /// Pod template labels of the workloads that want pods, by namespace.
    wanted: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl<'a> Judge<'a> {
    pub(crate) fn new(inv: &'a Inventory) -> Self {
        let mut wanted: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
        for svc in &inv.services {
            wanted.entry(ns_of(svc)).or_insert_with_key(|ns| {
                templates_in(inv, ns)
                    .filter(|(_, wants_pods)| *wants_pods)
                    .map(|(labels, _)| labels)
                    .collect()
            });
        }
        Self {
            inv,
            endpoints: endpoint_index(inv),
            wanted,
        }
    }

    pub(crate) fn health(&self, svc: &Service) -> Health {
        let ns = ns_of(svc);
        let name = svc.metadata.name.clone().unwrap_or_default();
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return Health::Serving;
        }
        let endpoints = self
            .endpoints
            .get(&(ns.clone(), name))
            .copied()
            .unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        if selector.is_empty() {
            return if endpoints.managed {
                Health::Serving
            } else {
                Health::Empty(
                    "has no selector and no Endpoints or EndpointSlice: nothing routes traffic to it"
                        .into(),
                )
            };
        }
        if endpoints.ready || (spec.publish_not_ready_addresses == Some(true) && endpoints.any) {
            return Health::Serving;
        }
        let live_pod = self.inv.pods.iter().any(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            ns_of(pod) == ns
                && matches!(phase, Some("Running" | "Pending"))
                && map_matches(&selector, &super::labels(&pod.metadata))
        });
        let wanted = self.wanted.get(&ns).is_some_and(|templates| {
            templates
                .iter()
                .any(|labels| map_matches(&selector, labels))
        });
        if live_pod || wanted {
            return Health::Outage;
        }
        Health::Empty(format!(
            "has no ready endpoint and its selector {} matches no running pod and no workload that wants replicas",
            render(&selector)
        ))
    }
}

/// What an empty Service holds: kube-proxy REJECT rules per port for its cluster IP, node port
/// and external addresses; A/AAAA records per IP family and SRV records per named port; a load
/// balancer once the cloud provisioned one (its status shows an ingress).
fn holds(svc: &Service) -> Holds {
    let spec = svc.spec.clone().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if headless {
        // Headless Services get no kube-proxy rules, and without endpoints no DNS records.
        return Holds::default();
    }
    let ports = spec.ports.unwrap_or_default();
    let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
    let node_ports = spec.type_.as_deref() == Some("NodePort")
        || (is_lb && spec.allocate_load_balancer_node_ports != Some(false));
    let lb_addresses = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map_or(0, Vec::len);
    let external = spec.external_ips.map_or(0, |ips| ips.len());
    let per_port =
        1 + u64::from(node_ports) + external as u64 + if is_lb { lb_addresses as u64 } else { 0 };
    Holds {
        kube_proxy_rules_per_node: per_port * ports.len() as u64,
        dns_a_records: spec.ip_families.map_or(1, |f| f.len().max(1)) as u64,
        dns_srv_records: ports
            .iter()
            .filter(|p| p.name.as_ref().is_some_and(|n| !n.is_empty()))
            .count() as u64,
        load_balancers: u64::from(is_lb && lb_addresses > 0),
        storage_bytes: 0,
    }
}

/// Without any endpoint objects in the input every Service would look empty.
pub(crate) fn require_endpoints(inv: &Inventory) -> Result<(), Skipped> {
    if inv.covers(Kind::EndpointSlice) || inv.covers(Kind::Endpoints) {
        Ok(())
    } else {
        Err(Skipped(
            "the input has no EndpointSlice or Endpoints objects, which this rule needs to tell Services with endpoints from those without".into(),
        ))
    }
}

fn empty_services<'a>(inv: &'a Inventory, types: &[&str], category: Category) -> RuleResult<'a> {
    if inv.services.is_empty() {
        return Ok(Vec::new());
    }
    require_endpoints(inv)?;
    let judge = Judge::new(inv);
    Ok(inv
        .services
        .iter()
        .filter(|svc| !owned(&svc.metadata))
        .filter(|svc| {
            let ty = svc
                .spec
                .as_ref()
                .and_then(|s| s.type_.as_deref())
                .unwrap_or("ClusterIP");
            types.contains(&ty)
        })
        .filter_map(|svc| {
            let Health::Empty(reason) = judge.health(svc) else {
                return None;
            };
            let mut candidate = Candidate::new(Kind::Service, &svc.metadata, category, reason);
            candidate.holds = holds(svc);
            if category == Category::LoadBalancerWithoutEndpoints
                && candidate.holds.load_balancers == 0
            {
                candidate
                    .reason
                    .push_str("; no cloud load balancer is provisioned (status has no ingress)");
            }
            Some(candidate)
        })
        .collect())
}

/// ClusterIP and headless Services with no ready endpoint.
pub fn cluster_ip_services_without_endpoints(inv: &Inventory) -> RuleResult<'_> {
    empty_services(inv, &["ClusterIP"], Category::ServiceWithoutEndpoints)
}

/// `type: LoadBalancer` Services with no ready endpoint.
pub fn load_balancers_without_endpoints(inv: &Inventory) -> RuleResult<'_> {
    empty_services(
        inv,
        &["LoadBalancer"],
        Category::LoadBalancerWithoutEndpoints,
    )
}

/// `type: NodePort` Services with no ready endpoint.
pub fn node_ports_without_endpoints(inv: &Inventory) -> RuleResult<'_> {
    empty_services(inv, &["NodePort"], Category::NodePortWithoutEndpoints)
}
