//! What the center's tests share: a center on a temporary SQLite file driven through
//! `oneshot`, every answer checked against `openapi.yaml`, real runner summaries made
//! by the engine against the built-in target, and a real PostgreSQL.

pub mod openapi;
pub mod postgres;
pub mod summaries;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use axum::Router;
use http_body_util::BodyExt;
use kpress_center::{app, AppState, Config, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const TOKEN: &str = "center-test-token";

/// A center on a store of its own.
pub struct TestCenter {
    pub app: Router,
    pub store: Store,
    pub db: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestCenter {
    /// A center on a new SQLite file.
    pub async fn sqlite() -> TestCenter {
        TestCenter::sqlite_with(|_| {}).await
    }

    /// A center on a new SQLite file, with `tweak` applied to its configuration.
    pub async fn sqlite_with(tweak: impl FnOnce(&mut Config)) -> TestCenter {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}", dir.path().join("center.db").display());
        let mut config = Config::new(db, TOKEN);
        tweak(&mut config);
        TestCenter::open(config, Some(dir)).await
    }

    /// A center on `config.db`.
    pub async fn open(config: Config, dir: Option<tempfile::TempDir>) -> TestCenter {
        let store = Store::connect(&config.db)
            .await
            .unwrap_or_else(|e| panic!("the store opens: {e}"));
        TestCenter {
            app: app(AppState::new(store.clone(), &config)),
            store,
            db: config.db.clone(),
            _dir: dir,
        }
    }

    /// A center on a new SQLite file that drives `deployment`-mode runs through the
    /// API double's client (a plain object store: nothing runs), with `settings`.
    pub async fn with_cluster(
        double: &kube_double::ApiDouble,
        settings: kpress_center::deploy::DriveSettings,
    ) -> TestCenter {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}", dir.path().join("center.db").display());
        let mut config = Config::new(db, TOKEN);
        config.drive = settings.clone();
        let store = Store::connect(&config.db)
            .await
            .unwrap_or_else(|e| panic!("the store opens: {e}"));
        let cluster = kpress_center::deploy::Cluster {
            client: double.client().expect("client"),
            runner_url: "http://kpress-center.kpress.svc:8070/".into(),
            settings,
        };
        TestCenter {
            app: app(AppState::with_cluster(store.clone(), &config, cluster)),
            store,
            db: config.db.clone(),
            _dir: Some(dir),
        }
    }

    /// Sends `call`; checks the answer against openapi.yaml.
    pub async fn send(&self, call: Call) -> Reply {
        let mut builder = Request::builder().method(call.method).uri(&call.path);
        for (name, value) in &call.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Body::from(call.body)).expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let reply = Reply {
            status,
            headers,
            body,
        };
        openapi::check(call.method, &call.path, &reply);
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Call::new("GET", path).token(TOKEN)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Call::new("POST", path).token(TOKEN).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Call::new("PUT", path).token(TOKEN).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Call::new("DELETE", path).token(TOKEN)).await
    }

    /// Registers a run; returns its runner token.
    pub async fn create(&self, id: &str, test: &str, runners: u64) -> String {
        let r = self
            .post("/api/runs", &create_body(id, test, runners))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["runner_token"]
            .as_str()
            .expect("runner token")
            .to_string()
    }

    /// The run as `GET /api/runs/{id}` shows it.
    pub async fn run(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/runs/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub async fn timeline(&self, id: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/runs/{id}/timeline")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["points"].as_array().expect("points").clone()
    }
}

/// A `CreateRun` body.
pub fn create_body(id: &str, test: &str, runners: u64) -> Value {
    json!({
        "id": id,
        "test": test,
        "app": "tenc-app=press-client-148-online",
        "mode": "job",
        "started_by": "ci@example",
        "scenario": "name: test\n",
        "runners": runners,
        "labels": {"kpress.io/job": "kpress-x"},
    })
}

/// One request.
pub struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    pub fn new(method: &'static str, path: &str) -> Call {
        Call {
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn token(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn cookie(self, token: &str) -> Call {
        self.header("cookie", &format!("kpress_token={token}"))
    }

    pub fn json(self, value: &Value) -> Call {
        self.body("application/json", serde_json::to_vec(value).expect("json"))
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Call {
        self.body = body;
        self.header("content-type", content_type)
    }
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error code of a JSON error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error answer: {}", self.text()))
            .to_string()
    }

    /// Asserts an error answer with `status` and its code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.code(), code, "{}", self.text());
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            self.headers
        );
    }
}
