//! Watches (`GET` a collection with `watch=true`): the store's change history replayed and
//! then followed as a stream of newline-separated `WatchEvent`s, because code that follows
//! objects (`Api::watch`, reflectors, "wait until ready" loops) only works against a server
//! that streams, and a polling double would hide the bugs of resumption and filtering.
//!
//! Honoured: `resourceVersion` (unset or `0`: synthetic `ADDED` events for the current objects
//! first; `N`: every change after `N`, or an `ERROR` event with a `410 Expired` status once the
//! history no longer reaches back that far), `labelSelector` and `fieldSelector` (an object
//! that stops matching is reported `DELETED`, one that starts matching `ADDED`, as the API
//! server does), `sendInitialEvents=true` (initial `ADDED` events closed by a `BOOKMARK`
//! annotated `k8s.io/initial-events-end`) and `timeoutSeconds` (default 30 minutes). Periodic
//! bookmarks are not sent; `allowWatchBookmarks` is accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::lock;
use crate::resource::ResourceType;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{labels_of, ChangeKind, FieldSelector, Page, Store};

/// The API server's longest watch when the client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// Events buffered for a slow client before the stream waits for it.
const BUFFER: usize = 64;

/// Whether the query asks for a watch.
pub(crate) fn requested(params: &HashMap<String, String>) -> bool {
    params.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// What a watch selects and where it starts.
struct Query {
    labels: LabelSelector,
    fields: FieldSelector,
    /// `None` for "the current state first".
    since: Option<u64>,
    initial_bookmark: bool,
    timeout: Duration,
}

impl Query {
    fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let text = |key: &str| params.get(key).map_or("", String::as_str);
        let labels = LabelSelector::parse(text("labelSelector"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(text("fieldSelector"))?;
        let initial = text("sendInitialEvents") == "true";
        let since = match text("resourceVersion") {
            "" | "0" => None,
            _ if initial => None,
            version => Some(version.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version {version:?}"))
            })?),
        };
        let timeout = crate::status::number_param(params, "timeoutSeconds")?
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64));
        Ok(Self {
            labels,
            fields,
            since,
            initial_bookmark: initial,
            timeout,
        })
    }

    fn selects(&self, object: &Value) -> bool {
        self.labels.matches(&labels_of(object)) && self.fields.matches(object)
    }

    /// The event a change is to this watch, if any.
    fn event(&self, kind: ChangeKind, object: &Value, previous: Option<&Value>) -> Option<Bytes> {
        let now = self.selects(object);
        let before = previous.is_some_and(|p| self.selects(p));
        let name = match kind {
            ChangeKind::Added if now => "ADDED",
            ChangeKind::Modified if now && before => "MODIFIED",
            ChangeKind::Modified if now => "ADDED",
            ChangeKind::Modified if before => "DELETED",
            ChangeKind::Deleted if now => "DELETED",
            _ => return None,
        };
        Some(line(name, object))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch of `rt` objects (in `namespace`, if given): the events, one JSON line each,
/// arrive on the returned channel until the timeout, the client hanging up or the store
/// closing.
pub(crate) fn open(
    store: &Arc<Mutex<Store>>,
    rt: ResourceType,
    namespace: Option<String>,
    params: &HashMap<String, String>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let query = Query::parse(params)?;
    let (sender, receiver) = mpsc::channel(BUFFER);
    let (first, cursor, changes) = {
        let store = lock(store);
        let mut first = Vec::new();
        let cursor = match query.since {
            Some(since) => since,
            None => {
                let current = store.list(
                    &rt,
                    namespace.as_deref(),
                    &query.labels,
                    &query.fields,
                    &Page::default(),
                );
                for object in current["items"].as_array().into_iter().flatten() {
                    first.push(line("ADDED", object));
                }
                if query.initial_bookmark {
                    first.push(line(
                        "BOOKMARK",
                        &json!({
                            "apiVersion": rt.api_version(),
                            "kind": rt.kind,
                            "metadata": {
                                "resourceVersion": store.revision().to_string(),
                                "annotations": {"k8s.io/initial-events-end": "true"},
                            },
                        }),
                    ));
                }
                store.revision()
            }
        };
        (first, cursor, store.subscribe())
    };
    tokio::spawn(follow(
        Arc::clone(store),
        Scope { rt, namespace },
        query,
        Cursor {
            first,
            revision: cursor,
            changes,
        },
        sender,
    ));
    Ok(receiver)
}

/// The objects a watch covers.
struct Scope {
    rt: ResourceType,
    namespace: Option<String>,
}

/// Where a watch stands: events still to send and the revision they reach.
struct Cursor {
    first: Vec<Bytes>,
    revision: u64,
    changes: watch::Receiver<u64>,
}

async fn follow(
    store: Arc<Mutex<Store>>,
    scope: Scope,
    query: Query,
    mut cursor: Cursor,
    sender: mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + query.timeout;
    let mut batch = std::mem::take(&mut cursor.first);
    loop {
        let expired = {
            let store = lock(&store);
            if store.is_closed() {
                return;
            }
            let changes =
                store.changes_since(&scope.rt, scope.namespace.as_deref(), cursor.revision);
            let expired = changes.is_none();
            match changes {
                Some(changes) => batch.extend(changes.into_iter().filter_map(|change| {
                    query.event(change.kind, &change.object, change.previous.as_ref())
                })),
                None => {
                    let status = ApiError::new(
                        410,
                        "Expired",
                        format!(
                            "too old resource version: {} ({})",
                            cursor.revision,
                            store.revision()
                        ),
                    );
                    batch.push(line("ERROR", &status.to_status()));
                }
            }
            cursor.revision = store.revision();
            cursor.changes.borrow_and_update();
            expired
        };
        for event in std::mem::take(&mut batch) {
            if sender.send(event).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        tokio::select! {
            changed = cursor.changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(deadline) => return,
            () = sender.closed() => return,
        }
    }
}
