//! Live input: lists every kind the audit reads through `kube::Client`, page by page. A kind
//! the cluster does not serve (a monitoring CRD that is not installed) is "none", not an error.

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::error::Error;
use crate::model::{Inventory, Kind};

/// Page size of list requests: large enough to keep requests few, small enough to keep the
/// API server's responses bounded on big clusters.
const PAGE: u32 = 500;

/// Lists the cluster into an inventory: namespaced kinds in `namespace` only when it is given,
/// cluster-scoped kinds (nodes, volumes, namespaces) always.
pub async fn load_cluster(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Inventory, Error> {
    let mut inventory = Inventory::default();
    for kind in Kind::ALL {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = match (kind.namespaced(), namespace) {
            (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            _ => Api::all_with(client.clone(), &resource),
        };
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(kube::Error::Api(status)) if status.code == 404 && kind.optional() => {
                    inventory.note(format!(
                        "{} {kind} is not served by the cluster: counted as none",
                        kind.api_version()
                    ));
                    inventory.mark_covered(kind);
                    break;
                }
                Err(kube::Error::Api(status))
                    if status.code == 403 && !kind.namespaced() && namespace.is_some() =>
                {
                    inventory.note(format!(
                        "not allowed to list {kind} objects: rules that need them were skipped"
                    ));
                    break;
                }
                Err(source) => {
                    return Err(Error::List {
                        what: format!("{} {kind}", kind.api_version()),
                        source,
                    })
                }
            };
            for item in page.items {
                let mut object = serde_json::to_value(&item).map_err(|e| Error::Invalid {
                    what: format!("{kind} from the cluster"),
                    message: e.to_string(),
                })?;
                // List items come without apiVersion/kind; the inventory needs them.
                object["apiVersion"] = Value::String(kind.api_version());
                object["kind"] = Value::String(kind.name().to_owned());
                inventory.insert(object)?;
            }
            inventory.mark_covered(kind);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(inventory)
}
