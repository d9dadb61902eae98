//! The object store behind the double: plain JSON objects under (group, version, plural,
//! namespace, name), with the server-side behaviour clients rely on (server-assigned metadata,
//! resource versions, `metadata.generation` of `apps` workloads, optimistic concurrency, delete
//! preconditions and finalizers), and a bounded history of changes that watches replay.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::resource::ResourceType;
use crate::selector::LabelSelector;
use crate::status::ApiError;

/// Names one object for tests: `apiVersion`, `kind`, namespace (for namespaced kinds), name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    /// A cluster-scoped object.
    pub fn cluster(api_version: &str, kind: &str, name: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    version: String,
    plural: String,
    namespace: String,
    name: String,
}

impl Key {
    fn new(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: rt.group.clone(),
            version: rt.version.clone(),
            plural: rt.plural.clone(),
            namespace: namespace.unwrap_or_default().to_owned(),
            name: name.to_owned(),
        }
    }
}

/// A `fieldSelector` restricted to what the double can evaluate.
#[derive(Debug, Default)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {part:?}"
                )));
            };
            if !matches!(field, "metadata.name" | "metadata.namespace") {
                return Err(ApiError::bad_request(format!(
                    "field label not supported by kube-double: {field}"
                )));
            }
            terms.push((field.to_owned(), equal, value.to_owned()));
        }
        Ok(Self(terms))
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                "metadata.name" => meta_str(object, "name"),
                _ => meta_str(object, "namespace"),
            };
            (actual.unwrap_or_default() == value) == *equal
        })
    }
}

/// Paging of a list request.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) limit: Option<usize>,
    pub(crate) continue_from: Option<usize>,
}

/// What a `DELETE` does, from its `DeleteOptions` body.
#[derive(Debug, Default)]
pub(crate) struct DeleteOptions {
    uid: Option<String>,
    resource_version: Option<String>,
    pub(crate) dry_run: bool,
    /// `Orphan`, `Background` or `Foreground`; only the cluster simulation acts on it, since
    /// without controllers there are no dependents to propagate to.
    pub(crate) propagation_policy: Option<String>,
}

impl DeleteOptions {
    pub(crate) fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        let pre = &value["preconditions"];
        Ok(Self {
            uid: pre["uid"].as_str().map(str::to_owned),
            resource_version: pre["resourceVersion"].as_str().map(str::to_owned),
            dry_run: value["dryRun"]
                .as_array()
                .is_some_and(|modes| modes.iter().any(|m| m == "All")),
            propagation_policy: value["propagationPolicy"].as_str().map(str::to_owned),
        })
    }

    /// The same preconditions as a dry run, so a caller can check them before deleting in
    /// several steps.
    pub(crate) fn checks_only(&self) -> Self {
        Self {
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            dry_run: true,
            propagation_policy: None,
        }
    }
}

/// How many changes the store keeps for watches; a watch from an older resource version gets
/// `410 Gone`, as after the real API server's compaction.
const HISTORY: usize = 10_000;

/// What a change did to an object, named as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change of one object: its state afterwards (for a deletion, the last state with the
/// deletion's resource version) and before.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    key: Key,
    revision: u64,
    pub(crate) kind: ChangeKind,
    pub(crate) object: Value,
    pub(crate) previous: Option<Value>,
}

/// All objects and registered types; the single source of truth behind the HTTP handler.
#[derive(Debug)]
pub(crate) struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    uids: u64,
    history: VecDeque<Change>,
    /// The newest revision dropped from `history`; watches from before it are too old.
    forgotten: u64,
    /// The latest revision, for watches waiting for changes.
    changes: watch::Sender<u64>,
    /// Set when the double stops, which ends every watch.
    closed: bool,
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object["metadata"][field].as_str()
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let root = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object is not a JSON object"))?;
    root.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata is not a JSON object"))
}

pub(crate) fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The current instant at the API's second precision, as RFC 3339.
pub(crate) fn now() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Whether the API server maintains `metadata.generation` for the type: the `apps` workloads,
/// whose controllers report it back as `status.observedGeneration`.
fn tracks_generation(rt: &ResourceType) -> bool {
    rt.group == "apps"
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in fields {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

impl Store {
    pub(crate) fn new(types: Vec<ResourceType>) -> Self {
        Self {
            types,
            objects: BTreeMap::new(),
            revision: 0,
            uids: 0,
            history: VecDeque::new(),
            forgotten: 0,
            changes: watch::Sender::new(0),
            closed: false,
        }
    }

    /// The latest resource version, as a list reports it.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// A receiver that sees the latest revision whenever an object changes or the store closes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Ends every watch; called when the double stops.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.changes.send_replace(self.revision);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The changes of objects of `rt` (in `namespace`, if given) after `revision`, oldest
    /// first; `None` when changes after `revision` have already been forgotten.
    pub(crate) fn changes_since(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        revision: u64,
    ) -> Option<Vec<&Change>> {
        if revision < self.forgotten {
            return None;
        }
        let namespace = Self::scope(rt, namespace);
        Some(
            self.history
                .iter()
                .filter(|c| {
                    c.revision > revision
                        && c.key.group == rt.group
                        && c.key.version == rt.version
                        && c.key.plural == rt.plural
                        && namespace.is_none_or(|ns| c.key.namespace == ns)
                })
                .collect(),
        )
    }

    fn record(&mut self, key: Key, kind: ChangeKind, object: &Value, previous: Option<&Value>) {
        if self.history.len() >= HISTORY {
            if let Some(dropped) = self.history.pop_front() {
                self.forgotten = dropped.revision;
            }
        }
        self.history.push_back(Change {
            key,
            revision: self.revision,
            kind,
            object: object.clone(),
            previous: previous.cloned(),
        });
        self.changes.send_replace(self.revision);
    }

    pub(crate) fn register(&mut self, rt: ResourceType) {
        if !self.types.contains(&rt) {
            self.types.push(rt);
        }
    }

    /// The type served at `group/version/plural`, or the `404` a missing CRD gets.
    pub(crate) fn type_at(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceType, ApiError> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource ({group}/{version}, Resource={plural})"),
                )
            })
    }

    pub(crate) fn type_of(&self, api_version: &str, kind: &str) -> Result<ResourceType, ApiError> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("no resource type registered for {api_version} {kind}"),
                )
            })
    }

    fn next_revision(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uids)
    }

    fn scope<'a>(rt: &ResourceType, namespace: Option<&'a str>) -> Option<&'a str> {
        if rt.namespaced {
            namespace
        } else {
            None
        }
    }

    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        page: &Page,
    ) -> Value {
        let namespace = Self::scope(rt, namespace);
        let matching: Vec<&Value> = self
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == rt.group
                    && k.version == rt.version
                    && k.plural == rt.plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v)
            .filter(|v| labels.matches(&labels_of(v)) && fields.matches(v))
            .collect();
        let start = page.continue_from.unwrap_or(0).min(matching.len());
        let end = page
            .limit
            .filter(|l| *l > 0)
            .map_or(matching.len(), |l| (start + l).min(matching.len()));
        let mut metadata = json!({ "resourceVersion": self.revision.to_string() });
        if end < matching.len() {
            metadata["continue"] = json!(end.to_string());
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": metadata,
            "items": matching[start..end],
        })
    }

    /// Every stored object of one type across namespaces, in key order.
    pub(crate) fn all(&self, rt: &ResourceType) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| {
                k.group == rt.group && k.version == rt.version && k.plural == rt.plural
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every stored object that has owner references, with its type.
    pub(crate) fn owned(&self) -> Vec<(ResourceType, Value)> {
        self.objects
            .iter()
            .filter(|(_, v)| {
                v["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| !owners.is_empty())
            })
            .filter_map(|(k, v)| {
                let rt = self.types.iter().find(|t| {
                    t.group == k.group && t.version == k.version && t.plural == k.plural
                })?;
                Some((rt.clone(), v.clone()))
            })
            .collect()
    }

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&Key::new(rt, Self::scope(rt, namespace), name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, name))
    }

    /// Stores a new object as `POST` does: the server owns uid, resourceVersion and
    /// creationTimestamp. `keep_identity` (seeding) keeps a given uid and creationTimestamp so
    /// fixtures keep their ages and identities.
    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        keep_identity: bool,
    ) -> Result<Value, ApiError> {
        let namespace = Self::scope(rt, namespace);
        let uid = self.next_uid();
        let revision = self.next_revision();
        let generated = format!("{:05x}", self.revision);
        let meta = metadata_mut(&mut object)?;
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::bad_request("name or generateName is required"))?;
            meta.insert("name".into(), json!(format!("{prefix}{generated}")));
        }
        match (namespace, meta.get("namespace").and_then(Value::as_str)) {
            (Some(path_ns), Some(obj_ns)) if path_ns != obj_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            (Some(path_ns), _) => {
                meta.insert("namespace".into(), json!(path_ns));
            }
            (None, _) if rt.namespaced => {
                return Err(ApiError::bad_request(format!("{} must be created in a namespace", rt.kind)))
            }
            (None, _) => {
                meta.remove("namespace");
            }
        }
        if !keep_identity || !meta.contains_key("uid") {
            meta.insert("uid".into(), json!(uid));
        }
        if !keep_identity || !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), json!(now()));
        }
        meta.insert("resourceVersion".into(), json!(revision));
        if tracks_generation(rt) && (!keep_identity || !meta.contains_key("generation")) {
            meta.insert("generation".into(), json!(1));
        }
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Value::Object(root) = &mut object {
            root.insert("apiVersion".into(), json!(rt.api_version()));
            root.insert("kind".into(), json!(rt.kind));
        }
        let key = Key::new(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.plural),
            ));
        }
        self.objects.insert(key.clone(), object.clone());
        self.record(key, ChangeKind::Added, &object, None);
        Ok(object)
    }

    /// `PUT`: replaces the object; a stale `metadata.resourceVersion` is a conflict.
    pub(crate) fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        object: Value,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        if let Some(given) = meta_str(&object, "resourceVersion") {
            if Some(given) != meta_str(&current, "resourceVersion") {
                return Err(ApiError::conflict(
                    &rt.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
        }
        self.commit(rt, namespace, name, &current, object)
    }

    /// `PATCH` with a merge patch; a `metadata.resourceVersion` in the patch is a precondition.
    pub(crate) fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        if let Some(given) = meta_str(patch, "resourceVersion") {
            if Some(given) != meta_str(&current, "resourceVersion") {
                return Err(ApiError::conflict(
                    &rt.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
        }
        let mut updated = current.clone();
        merge_patch(&mut updated, patch);
        self.commit(rt, namespace, name, &current, updated)
    }

    /// Applies an edit made outside any client, bumping the resource version as a concurrent
    /// writer would.
    pub(crate) fn edit(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        let mut updated = current.clone();
        edit(&mut updated);
        self.commit(rt, namespace, name, &current, updated)
    }

    /// Stores an update, keeping the identity fields the server owns, and completes a pending
    /// deletion once the last finalizer is gone.
    fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        current: &Value,
        mut updated: Value,
    ) -> Result<Value, ApiError> {
        let revision = self.next_revision();
        let meta = metadata_mut(&mut updated)?;
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            match current["metadata"].get(field) {
                Some(value) => meta.insert(field.into(), value.clone()),
                None => meta.remove(field),
            };
        }
        meta.insert("resourceVersion".into(), json!(revision));
        if tracks_generation(rt) {
            let generation = current["metadata"]["generation"].as_u64().unwrap_or(1);
            let bump = u64::from(current.get("spec") != updated.get("spec"));
            if let Some(meta) = updated["metadata"].as_object_mut() {
                meta.insert("generation".into(), json!(generation + bump));
            }
        }
        let finalized = updated["metadata"].get("deletionTimestamp").is_some()
            && updated["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        let key = Key::new(rt, Self::scope(rt, namespace), name);
        if finalized {
            self.objects.remove(&key);
            self.record(key, ChangeKind::Deleted, &updated, Some(current));
        } else {
            self.objects.insert(key.clone(), updated.clone());
            self.record(key, ChangeKind::Modified, &updated, Some(current));
        }
        Ok(updated)
    }

    /// `DELETE`: checks preconditions, then removes the object, or only marks it with a
    /// `deletionTimestamp` while finalizers remain. Returns the object as last stored.
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        let checks = [
            ("UID", &options.uid, meta_str(&current, "uid")),
            (
                "ResourceVersion",
                &options.resource_version,
                meta_str(&current, "resourceVersion"),
            ),
        ];
        for (label, wanted, actual) in checks {
            if let Some(wanted) = wanted {
                if Some(wanted.as_str()) != actual {
                    return Err(ApiError::conflict(
                        &rt.plural,
                        name,
                        &format!(
                            "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                            actual.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        if options.dry_run {
            return Ok(current);
        }
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            let mut marked = current.clone();
            if marked["metadata"]["deletionTimestamp"].is_null() {
                marked["metadata"]["deletionTimestamp"] = json!(now());
            }
            marked["metadata"]["resourceVersion"] = json!(self.next_revision());
            let key = Key::new(rt, Self::scope(rt, namespace), name);
            self.objects.insert(key.clone(), marked.clone());
            self.record(key, ChangeKind::Modified, &marked, Some(&current));
            return Ok(marked);
        }
        let key = Key::new(rt, Self::scope(rt, namespace), name);
        self.objects.remove(&key);
        let mut last = current.clone();
        last["metadata"]["resourceVersion"] = json!(self.next_revision());
        self.record(key, ChangeKind::Deleted, &last, Some(&current));
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_type() -> ResourceType {
        ResourceType::new("", "v1", "Service", "services", true)
    }

    fn store_with_service() -> Store {
        let mut store = Store::new(vec![service_type()]);
        let svc = json!({"metadata": {"name": "web", "finalizers": ["example.com/hold"]}});
        store
            .create(&service_type(), Some("a"), svc, false)
            .expect("created");
        store
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "h": [1]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "h": [1]}));
    }

    #[test]
    fn finalizers_hold_a_deletion_until_removed() {
        let mut store = store_with_service();
        let rt = service_type();
        let marked = store
            .delete(&rt, Some("a"), "web", &DeleteOptions::default())
            .expect("deleted");
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(store.get(&rt, Some("a"), "web").is_ok());
        let patch = json!({"metadata": {"finalizers": null}});
        store.patch(&rt, Some("a"), "web", &patch).expect("patched");
        assert_eq!(
            store.get(&rt, Some("a"), "web").map_err(|e| e.code),
            Err(404)
        );
    }

    #[test]
    fn pages_continue_where_the_last_one_stopped() {
        let rt = service_type();
        let mut store = Store::new(vec![rt.clone()]);
        for name in ["a", "b", "c"] {
            store
                .create(&rt, Some("ns"), json!({"metadata": {"name": name}}), false)
                .expect("created");
        }
        let all = LabelSelector::default();
        let fields = FieldSelector::default();
        let first = store.list(
            &rt,
            None,
            &all,
            &fields,
            &Page {
                limit: Some(2),
                continue_from: None,
            },
        );
        assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(first["metadata"]["continue"], json!("2"));
        let rest = store.list(
            &rt,
            None,
            &all,
            &fields,
            &Page {
                limit: Some(2),
                continue_from: Some(2),
            },
        );
        assert_eq!(rest["items"][0]["metadata"]["name"], json!("c"));
        assert!(rest["metadata"]["continue"].is_null());
    }
}
