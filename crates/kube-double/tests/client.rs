//! The double as the real `kube::Client` sees it: every supported verb, selectors, paging,
//! `Status` errors, request records, injected faults, concurrent edits and watches.

use futures::StreamExt;
use http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    Preconditions, WatchEvent, WatchParams,
};
use kube_double::{ApiDouble, ApiError, Fault, ObjectRef, ResourceType};
use serde_json::json;

fn config_map(namespace: &str, name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": "v"},
    })
}

async fn seeded() -> ApiDouble {
    let double = ApiDouble::start().await.expect("double starts");
    for (ns, name, labels) in [
        ("a", "web", json!({"app": "web", "tier": "front"})),
        ("a", "db", json!({"app": "db"})),
        ("b", "web", json!({"app": "web", "canary": "true"})),
    ] {
        double.seed(config_map(ns, name, labels)).expect("seeded");
    }
    double
}

fn api_code(err: &kube::Error) -> Option<(u16, String)> {
    match err {
        kube::Error::Api(status) => Some((status.code, status.reason.clone())),
        _ => None,
    }
}

fn names(list: &kube::api::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .map(|cm| {
            format!(
                "{}/{}",
                cm.metadata.namespace.as_deref().unwrap_or_default(),
                cm.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn lists_filter_by_namespace_and_label_selector() {
    let double = seeded().await;
    let client = double.client().expect("client");
    let all: Api<ConfigMap> = Api::all(client.clone());
    let in_a: Api<ConfigMap> = Api::namespaced(client, "a");
    let cases = [
        (&all, "", vec!["a/db", "a/web", "b/web"]),
        (&in_a, "", vec!["a/db", "a/web"]),
        (&all, "app=web", vec!["a/web", "b/web"]),
        (&all, "app!=web", vec!["a/db"]),
        (&all, "canary", vec!["b/web"]),
        (&all, "!canary,app in (web)", vec!["a/web"]),
        (&all, "app notin (web)", vec!["a/db"]),
    ];
    for (api, selector, expected) in cases {
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .expect("listed");
        assert_eq!(names(&list), expected, "selector {selector:?}");
    }
    let bad = all.list(&ListParams::default().labels("app in web")).await;
    assert_eq!(
        bad.err().as_ref().and_then(api_code).map(|c| c.0),
        Some(400)
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::all(double.client().expect("client"));
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(names(&first), ["a/db", "a/web"]);
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(&second), ["b/web"]);
    assert_eq!(second.metadata.continue_, None);
}

#[tokio::test]
async fn create_assigns_server_fields_and_rejects_duplicates() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "c");
    let cm: ConfigMap =
        serde_json::from_value(config_map("c", "fresh", json!({}))).expect("config map");
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("created");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let again = api.create(&PostParams::default(), &cm).await;
    assert_eq!(
        again.err().as_ref().and_then(api_code),
        Some((409, "AlreadyExists".to_owned()))
    );
    let fetched = api.get("fresh").await.expect("fetched");
    assert_eq!(fetched.metadata.uid, created.metadata.uid);
}

#[tokio::test]
async fn unknown_objects_and_unregistered_types_are_404_status() {
    let double = seeded().await;
    let client = double.client().expect("client");
    let missing = Api::<Service>::namespaced(client.clone(), "a")
        .get("nope")
        .await;
    assert_eq!(
        missing.err().as_ref().and_then(api_code),
        Some((404, "NotFound".to_owned()))
    );
    let monitors = ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "ServiceMonitor".into(),
        plural: "servicemonitors".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &monitors);
    let crd_missing = api.list(&ListParams::default()).await;
    assert_eq!(
        crd_missing.err().as_ref().and_then(api_code).map(|c| c.0),
        Some(404)
    );

    double.register(ResourceType::new(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ));
    let installed = api.list(&ListParams::default()).await.expect("now served");
    assert!(installed.items.is_empty());
}

#[tokio::test]
async fn merge_patch_and_replace_update_with_optimistic_concurrency() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "a");
    let before = api.get("web").await.expect("fetched");
    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": null, "n": "1"}})),
        )
        .await
        .expect("patched");
    assert_eq!(
        patched
            .data
            .as_ref()
            .map(|d| d.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["n".to_owned()])
    );
    assert_ne!(
        patched.metadata.resource_version,
        before.metadata.resource_version
    );
    let stale = api.replace("web", &PostParams::default(), &before).await;
    assert_eq!(
        stale.err().as_ref().and_then(api_code).map(|c| c.0),
        Some(409)
    );
    let fresh = api.replace("web", &PostParams::default(), &patched).await;
    assert!(fresh.is_ok());
}

#[tokio::test]
async fn delete_honours_uid_and_resource_version_preconditions() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "a");
    let current = api.get("web").await.expect("fetched");
    let params = |uid: Option<String>, rv: Option<String>| DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: rv,
        }),
        ..DeleteParams::default()
    };
    let wrong_uid = api.delete("web", &params(Some("other".into()), None)).await;
    let (code, reason) = wrong_uid
        .err()
        .as_ref()
        .and_then(api_code)
        .expect("api error");
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let target = ObjectRef::namespaced("v1", "ConfigMap", "a", "web");
    double
        .edit(&target, |cm| cm["data"]["k"] = json!("changed"))
        .expect("edited");
    let stale = api
        .delete(
            "web",
            &params(
                current.metadata.uid.clone(),
                current.metadata.resource_version.clone(),
            ),
        )
        .await;
    assert_eq!(
        stale.err().as_ref().and_then(api_code).map(|c| c.0),
        Some(409)
    );
    assert!(double.object(&target).is_some());

    let latest = api.get("web").await.expect("fetched");
    api.delete(
        "web",
        &params(
            latest.metadata.uid.clone(),
            latest.metadata.resource_version.clone(),
        ),
    )
    .await
    .expect("deleted");
    assert!(double.object(&target).is_none());

    let delete_bodies: Vec<serde_json::Value> = double
        .requests()
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .filter_map(|r| r.json())
        .collect();
    assert_eq!(delete_bodies.len(), 3);
    assert_eq!(delete_bodies[0]["preconditions"]["uid"], json!("other"));
}

#[tokio::test]
async fn injected_faults_fire_once_on_the_matching_request() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "a");
    double.inject(Fault::new(
        Method::DELETE,
        "/api/v1/namespaces/a/configmaps/db",
        ApiError::new(500, "InternalError", "etcd is on fire"),
    ));
    assert!(api.get("db").await.is_ok(), "GET does not match the fault");
    let failed = api.delete("db", &DeleteParams::default()).await;
    assert_eq!(
        failed.err().as_ref().and_then(api_code),
        Some((500, "InternalError".to_owned()))
    );
    assert!(api.delete("db", &DeleteParams::default()).await.is_ok());
    let paths: Vec<(Method, String)> = double
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let path = "/api/v1/namespaces/a/configmaps/db".to_owned();
    assert_eq!(
        paths,
        [
            (Method::GET, path.clone()),
            (Method::DELETE, path.clone()),
            (Method::DELETE, path)
        ]
    );
}

/// The next watch event, failing the test if none arrives in time.
async fn next_event<S>(events: &mut S) -> WatchEvent<ConfigMap>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .expect("a watch event in time")
        .expect("the stream goes on")
        .expect("a valid event")
}

fn event_name(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(cm) => format!("ADDED {}", cm.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(cm) => {
            format!("MODIFIED {}", cm.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Deleted(cm) => {
            format!("DELETED {}", cm.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn watches_replay_the_current_state_and_follow_filtered_changes() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "a");
    let params = WatchParams::default().labels("app=web").timeout(20);
    let mut events = api.watch(&params, "0").await.expect("watch").boxed();
    assert_eq!(event_name(&next_event(&mut events).await), "ADDED web");

    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    api.patch("db", &PatchParams::default(), &relabel("web"))
        .await
        .expect("patched");
    api.patch("web", &PatchParams::default(), &relabel("gone"))
        .await
        .expect("patched");
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .expect("patched");
    api.delete("db", &DeleteParams::default())
        .await
        .expect("deleted");
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(event_name(&next_event(&mut events).await));
    }
    assert_eq!(
        seen,
        ["ADDED db", "DELETED web", "MODIFIED db", "DELETED db"],
        "entering and leaving the selector reads as ADDED and DELETED"
    );
}

#[tokio::test]
async fn watches_resume_from_a_resource_version() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::namespaced(double.client().expect("client"), "b");
    let listed = api.list(&ListParams::default()).await.expect("listed");
    let version = listed.metadata.resource_version.expect("list version");
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "1"}})),
    )
    .await
    .expect("patched");
    let params = WatchParams::default().timeout(20);
    let mut events = api.watch(&params, &version).await.expect("watch").boxed();
    let event = next_event(&mut events).await;
    assert_eq!(
        event_name(&event),
        "MODIFIED web",
        "only the change after the list"
    );
    let WatchEvent::Modified(cm) = event else {
        unreachable!()
    };
    assert_eq!(
        cm.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("1")
    );

    let initial = WatchParams::default().initial_events().timeout(20);
    let mut streamed = api.watch(&initial, "").await.expect("watch").boxed();
    assert_eq!(event_name(&next_event(&mut streamed).await), "ADDED web");
    let WatchEvent::Bookmark(bookmark) = next_event(&mut streamed).await else {
        panic!("the initial events end with a bookmark");
    };
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn a_watch_ends_at_its_timeout_and_when_the_double_stops() {
    let double = seeded().await;
    let api: Api<ConfigMap> = Api::all(double.client().expect("client"));
    let short = WatchParams::default().timeout(1);
    let mut events = api.watch(&short, "0").await.expect("watch").boxed();
    for _ in 0..3 {
        next_event(&mut events).await;
    }
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after timeoutSeconds"
    );

    let long = WatchParams::default().timeout(300);
    let mut events = api.watch(&long, "0").await.expect("watch").boxed();
    for _ in 0..3 {
        next_event(&mut events).await;
    }
    drop(double);
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await;
    assert!(
        matches!(end, Ok(None | Some(Err(_)))),
        "dropping the double ends the watch"
    );
}
