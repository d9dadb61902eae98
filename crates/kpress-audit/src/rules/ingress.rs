//! Ingress backends that answer 503: the Service is missing, lacks the port, or routes to
//! nothing. Clients still reach the gateway (billed as gateway traffic) and get an error.
//!
//! An Ingress is reported once, with every broken backend named. It is prunable only when all
//! of its Service backends are broken: deleting an Ingress that still serves some paths would
//! turn a partial black hole into a full outage, so the fix there is to edit the rule.
//! Resource backends and ExternalName Services are not judged (they route outside the cluster's
//! endpoint model), and a backend whose Service is in an outage (see `services`) is not broken.

use k8s_openapi::api::networking::v1::{Ingress, IngressServiceBackend};

use super::services::{require_endpoints, Health, Judge};
use super::{owned, require, Candidate, Category, RuleResult};
use crate::model::{Inventory, Kind};
use crate::refs::ns_of;

/// A service backend of an Ingress, with where it is used (`host/path` or `default`).
struct Backend<'a> {
    route: String,
    service: &'a IngressServiceBackend,
}

fn backends(ingress: &Ingress) -> Vec<Backend<'_>> {
    let Some(spec) = &ingress.spec else {
        return Vec::new();
    };
    let mut found: Vec<Backend<'_>> = spec
        .default_backend
        .as_ref()
        .and_then(|b| b.service.as_ref())
        .map(|s| Backend {
            route: "default backend".into(),
            service: s,
        })
        .into_iter()
        .collect();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.as_deref().unwrap_or("*");
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            if let Some(s) = &path.backend.service {
                found.push(Backend {
                    route: format!("{host}{}", path.path.as_deref().unwrap_or("/")),
                    service: s,
                });
            }
        }
    }
    found
}

/// Why a backend answers 503, or `None` if it does not.
fn broken(
    inv: &Inventory,
    judge: &Judge<'_>,
    ns: &str,
    backend: &IngressServiceBackend,
) -> Option<String> {
    let name = &backend.name;
    let Some(svc) = inv
        .services
        .iter()
        .find(|s| ns_of(*s) == ns && s.metadata.name.as_deref() == Some(name))
    else {
        return Some(format!("Service {name} does not exist"));
    };
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() != Some("ExternalName") {
        if let Some(port) = &backend.port {
            let ports = spec.ports.unwrap_or_default();
            let found = ports.iter().any(|p| {
                port.number.is_some_and(|n| n == p.port)
                    || port
                        .name
                        .as_ref()
                        .is_some_and(|n| p.name.as_ref() == Some(n))
            });
            if !found {
                let wanted = port
                    .number
                    .map(|n| n.to_string())
                    .or_else(|| port.name.clone())
                    .unwrap_or_default();
                return Some(format!("Service {name} has no port {wanted}"));
            }
        }
    }
    match judge.health(svc) {
        Health::Empty(_) => Some(format!("Service {name} has no ready endpoint")),
        Health::Serving | Health::Outage => None,
    }
}

/// Ingresses with at least one Service backend that answers 503.
pub fn ingress_black_holes(inv: &Inventory) -> RuleResult<'_> {
    if inv.ingresses.is_empty() {
        return Ok(Vec::new());
    }
    require(
        inv,
        "tell missing backend Services from undumped ones",
        &[Kind::Service],
    )?;
    require_endpoints(inv)?;
    let judge = Judge::new(inv);
    let mut found = Vec::new();
    for ingress in inv.ingresses.iter().filter(|i| !owned(&i.metadata)) {
        let ns = ns_of(ingress);
        let all = backends(ingress);
        let broken: Vec<String> = all
            .iter()
            .filter_map(|b| {
                let why = broken(inv, &judge, &ns, b.service)?;
                Some(format!("{} -> {why}", b.route))
            })
            .collect();
        if broken.is_empty() {
            continue;
        }
        let reason = format!(
            "{} of {} backends answer 503: {}",
            broken.len(),
            all.len(),
            broken.join("; ")
        );
        let mut candidate = Candidate::new(
            Kind::Ingress,
            &ingress.metadata,
            Category::IngressBlackHole,
            reason,
        );
        if broken.len() < all.len() {
            candidate.keep = Some("other backends of this Ingress still serve: fix or remove the broken rules instead".into());
        }
        found.push(candidate);
    }
    Ok(found)
}
