//! Prune against the API double: backups come first and restore what was deleted, deletes carry
//! uid/resourceVersion preconditions so changed objects are skipped, and a backup that cannot
//! be written deletes nothing.

use http::Method;
use kpress_audit::model::Kind;
use kpress_audit::prune::{plan, prune, PruneOutcome};
use kube_double::{ApiDouble, ApiError, Fault, ObjectRef};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::{audit_time, options};
use crate::live::{audit_live, seeded_double};

fn deletes(double: &ApiDouble) -> Vec<(String, Value)> {
    double
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| {
            let body = r.json().unwrap_or_default();
            (r.path, body)
        })
        .collect()
}

fn read_backup(outcome: &PruneOutcome) -> Vec<Value> {
    let text = std::fs::read_to_string(&outcome.backup).expect("backup readable");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("backup is YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

#[tokio::test]
async fn prune_backs_up_then_deletes_every_prunable_finding_with_preconditions() {
    let double = seeded_double(true).await;
    let audit = audit_live(&double, &options()).await;
    let targets = plan(&audit);
    assert_eq!(targets.len(), 18, "20 findings, 2 not prunable");
    assert_eq!(
        targets[0].key.kind,
        Kind::Ingress,
        "referrers are deleted first"
    );
    assert_eq!(targets[17].key.kind, Kind::PersistentVolume);
    assert!(deletes(&double).is_empty(), "planning deletes nothing");

    let dir = tempfile::tempdir().expect("temp dir");
    let outcome = prune(
        &double.client().expect("client"),
        &audit,
        &targets,
        dir.path(),
        audit_time(),
    )
    .await
    .expect("pruned");
    assert_eq!(
        (
            outcome.deleted.len(),
            outcome.skipped.len(),
            outcome.failed.len()
        ),
        (18, 0, 0)
    );

    let backup = read_backup(&outcome);
    assert_eq!(backup.len(), 18);
    for (target, doc) in targets.iter().zip(&backup) {
        assert_eq!(doc["metadata"]["name"], json!(target.key.name));
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            assert!(
                doc["metadata"].get(field).is_none(),
                "{field} kept in {}",
                target.key
            );
        }
        assert!(doc.get("status").is_none());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outcome.backup)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "backups may hold Secrets");
    }

    let requests = deletes(&double);
    assert_eq!(requests.len(), 18);
    let (path, body) = &requests[0];
    assert_eq!(
        path,
        "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/promo"
    );
    let promo = audit
        .report
        .findings
        .iter()
        .find(|f| f.name == "promo")
        .expect("promo finding");
    assert_eq!(body["preconditions"]["uid"], json!(promo.uid));
    assert_eq!(
        body["preconditions"]["resourceVersion"],
        json!(promo.resource_version)
    );
    assert_eq!(body["propagationPolicy"], json!("Background"));

    let gone = ObjectRef::namespaced("v1", "Secret", "shop", "old-api-key");
    assert!(double.object(&gone).is_none());
    let kept = ObjectRef::namespaced("networking.k8s.io/v1", "Ingress", "shop", "storefront");
    assert!(double.object(&kept).is_some(), "non-prunable findings stay");
    let retained = ObjectRef::cluster("v1", "PersistentVolume", "pv-released");
    assert!(double.object(&retained).is_some());

    // A second audit finds the non-prunable findings again, plus what the pruned leftovers
    // were keeping referenced: pruning is iterative by design, never speculative.
    let after = audit_live(&double, &options()).await.report;
    let left: Vec<String> = after
        .findings
        .iter()
        .map(|f| format!("{}/{}", f.kind, f.name))
        .collect();
    assert_eq!(
        left,
        [
            "ServiceMonitor/loadgen",
            "Ingress/storefront",
            "ConfigMap/checkout-config",
            "Secret/checkout-db",
            "Secret/promo-basic-auth",
            "Secret/promo-tls",
            "PersistentVolume/pv-released",
        ]
    );
}

#[tokio::test]
async fn objects_changed_since_the_audit_are_skipped_not_deleted() {
    let double = seeded_double(true).await;
    let audit = audit_live(&double, &options()).await;
    let edited = ObjectRef::namespaced("v1", "ConfigMap", "shop", "old-feature-flags");
    double
        .edit(&edited, |cm| cm["data"]["beta"] = json!("false"))
        .expect("edited");
    let replaced = ObjectRef::namespaced("v1", "Secret", "shop", "old-api-key");
    let mut fresh = double.object(&replaced).expect("secret");
    fresh["metadata"]["uid"] = json!("11111111-2222-4333-8444-555555555555");
    // Replace the object: same name, new identity, as a concurrent `kubectl delete && apply`.
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(double.client().expect("client"), "shop");
    api.delete("old-api-key", &Default::default())
        .await
        .expect("deleted by someone else");
    double.seed(fresh).expect("recreated");

    let dir = tempfile::tempdir().expect("temp dir");
    let targets = plan(&audit);
    let outcome = prune(
        &double.client().expect("client"),
        &audit,
        &targets,
        dir.path(),
        audit_time(),
    )
    .await
    .expect("pruned");
    let skipped: Vec<(String, &str)> = outcome
        .skipped
        .iter()
        .map(|s| (s.key.name.clone(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, "old-feature-flags");
    assert!(
        skipped[0]
            .1
            .contains("Precondition failed: ResourceVersion"),
        "{}",
        skipped[0].1
    );
    assert_eq!(skipped[1].0, "old-api-key");
    assert!(
        skipped[1].1.contains("Precondition failed: UID"),
        "{}",
        skipped[1].1
    );
    assert_eq!(outcome.deleted.len(), 16);
    assert!(double.object(&edited).is_some());
    assert!(double.object(&replaced).is_some());
}

#[tokio::test]
async fn a_backup_that_cannot_be_written_deletes_nothing() {
    let double = seeded_double(true).await;
    let audit = audit_live(&double, &options()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "occupied").expect("file written");
    let err = prune(
        &double.client().expect("client"),
        &audit,
        &plan(&audit),
        &not_a_dir,
        audit_time(),
    )
    .await
    .expect_err("backup fails");
    assert!(err.to_string().contains("nothing was deleted"), "{err}");
    assert!(deletes(&double).is_empty());
    let after = audit_live(&double, &options()).await.report;
    assert_eq!(after.findings.len(), 20);
}

#[tokio::test]
async fn a_failed_delete_is_reported_and_the_rest_proceed() {
    let double = seeded_double(true).await;
    let audit = audit_live(&double, &options()).await;
    double.inject(Fault::new(
        Method::DELETE,
        "/api/v1/namespaces/shop/services/checkout",
        ApiError::new(500, "InternalError", "etcdserver: request timed out"),
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let outcome = prune(
        &double.client().expect("client"),
        &audit,
        &plan(&audit),
        dir.path(),
        audit_time(),
    )
    .await
    .expect("pruned");
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].key.name, "checkout");
    assert!(
        outcome.failed[0].reason.contains("etcdserver"),
        "{}",
        outcome.failed[0].reason
    );
    assert_eq!(outcome.deleted.len(), 17);
}

#[test]
fn backups_strip_server_fields_and_rebind_storage() {
    let inventory =
        kpress_audit::load::load_files(&[crate::common::cluster_dump()]).expect("loads");
    let raw = |kind: Kind, ns: Option<&str>, name: &str| {
        let key = kpress_audit::model::ObjectKey {
            kind,
            namespace: ns.map(str::to_owned),
            name: name.to_owned(),
        };
        let object = inventory
            .raw(&key)
            .unwrap_or_else(|| panic!("{key} in the dump"));
        kpress_audit::prune::restorable(object, &inventory)
    };

    let svc = raw(Kind::Service, Some("shop"), "checkout-lb");
    assert!(svc["spec"].get("clusterIP").is_none() && svc["spec"].get("clusterIPs").is_none());
    assert_eq!(
        svc["spec"]["ports"][0]["nodePort"],
        json!(31443),
        "external contracts are kept"
    );
    assert!(svc.get("status").is_none());

    // pv-scratch is retained: the restored claim rebinds to it and gets the data back.
    let claim = raw(Kind::PersistentVolumeClaim, Some("shop"), "scratch");
    assert_eq!(claim["spec"]["volumeName"], json!("pv-scratch"));
    assert!(claim["metadata"]["annotations"]
        .get("pv.kubernetes.io/bind-completed")
        .is_none());
    // pv-web-cache is deleted with its claim: a restored claim must provision a new volume.
    let reclaimed = raw(Kind::PersistentVolumeClaim, Some("shop"), "web-cache");
    assert!(reclaimed["spec"].get("volumeName").is_none());

    let pv = raw(Kind::PersistentVolume, None, "pv-released");
    assert_eq!(
        pv["spec"]["claimRef"],
        json!({"kind": "PersistentVolumeClaim", "namespace": "perf", "name": "results"}),
        "pre-bound to a restored claim of the same name, not to the deleted claim's uid"
    );

    let job = raw(Kind::Job, Some("shop"), "migrate-2024");
    assert!(job["spec"].get("selector").is_none());
    assert_eq!(job["spec"]["template"]["metadata"]["labels"], json!({}));

    let orphan = raw(Kind::ReplicaSet, Some("shop"), "batch-7f8c9d");
    assert!(
        orphan["metadata"].get("ownerReferences").is_none(),
        "the owner is gone"
    );
    assert_eq!(orphan["metadata"]["namespace"], json!("shop"));
}

#[test]
fn the_backup_file_holds_exactly_the_restorable_objects() {
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}, "data": {"k": "multi\nline"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b", "namespace": "x"}, "data": {"k": "dg=="}}),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let first =
        kpress_audit::prune::write_backup(dir.path(), &objects, audit_time()).expect("written");
    let second =
        kpress_audit::prune::write_backup(dir.path(), &objects, audit_time()).expect("written");
    assert_ne!(
        first, second,
        "a second backup in the same second gets its own file"
    );
    let outcome = PruneOutcome {
        backup: first,
        deleted: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
    };
    assert_eq!(read_backup(&outcome), objects);
    let text = std::fs::read_to_string(&outcome.backup).expect("readable");
    assert!(text.starts_with("# kpress audit backup written at 2025-06-01T00:00:00Z before deleting 2 object(s).\n# Restore with: kubectl apply -f "));
}
