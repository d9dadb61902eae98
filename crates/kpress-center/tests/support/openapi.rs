//! `openapi.yaml` as the tests read it: every answer a test gets is checked against
//! the operation's documented responses (status, content type, JSON schema).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::Reply;

/// The document, as JSON.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("read openapi.yaml");
        serde_norway::from_str(&text).expect("openapi.yaml is YAML")
    })
}

/// The documented path template `path` (query ignored) falls under, if any.
pub fn template_of(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let given: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object().expect("paths");
    paths
        .keys()
        .filter(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == given.len()
                && parts.iter().zip(&given).all(|(t, g)| {
                    (t.starts_with('{') && t.ends_with('}') && !g.is_empty()) || t == g
                })
        })
        // A literal segment beats a parameter.
        .min_by_key(|t| t.matches('{').count())
        .cloned()
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// `#pointer` as a URI reference (braces are not allowed in one as they are).
pub fn uri_fragment(pointer: &str) -> String {
    format!("#{}", pointer.replace('{', "%7B").replace('}', "%7D"))
}

/// Validates `value` against the schema at JSON pointer `pointer` of the document.
pub fn validate(pointer: &str, value: &Value) {
    type Cache = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let validator = {
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(pointer.to_string())
            .or_insert_with(|| {
                let mut root = document().clone();
                root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
                root["$ref"] = uri_fragment(pointer).into();
                Arc::new(
                    jsonschema::validator_for(&root)
                        .unwrap_or_else(|e| panic!("schema at {pointer} compiles: {e}")),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the answer does not match {pointer}: {errors:#?}\n{value:#}"
    );
}

/// Checks `reply` to `method path` against the document.
pub fn check(method: &str, path: &str, reply: &Reply) {
    let Some(template) = template_of(path) else {
        assert_eq!(reply.status, 404, "{method} {path} is undocumented");
        validate("/components/schemas/Error", &reply.json());
        return;
    };
    let op_pointer = format!(
        "/paths/{}/{}",
        pointer_escape(&template),
        method.to_ascii_lowercase()
    );
    let doc = document();
    let Some(op) = doc.pointer(&op_pointer) else {
        assert_eq!(
            reply.status,
            405,
            "{method} {template} is undocumented: {}",
            reply.text()
        );
        validate("/components/schemas/Error", &reply.json());
        return;
    };
    let status = reply.status.to_string();
    let mut response = op["responses"].get(&status).unwrap_or_else(|| {
        panic!(
            "{method} {template}: status {status} is undocumented: {}",
            reply.text()
        )
    });
    let mut response_pointer = format!("{op_pointer}/responses/{status}");
    if let Some(r) = response.get("$ref").and_then(Value::as_str) {
        response_pointer = r.trim_start_matches('#').to_string();
        response = doc.pointer(&response_pointer).expect("response reference");
    }
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(
            reply.body.is_empty(),
            "{method} {template} {status} documents no body, got {}",
            reply.text()
        );
        return;
    };
    let kind = reply
        .header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        content.contains_key(&kind),
        "{method} {template} {status}: content type `{kind}` is undocumented"
    );
    if kind == "application/json" {
        validate(
            &format!(
                "{response_pointer}/content/{}/schema",
                pointer_escape(&kind)
            ),
            &reply.json(),
        );
    }
}
