//! `openapi.yaml` against the router: every route served is documented and every
//! documented route is served, no other method answers on those paths, and every
//! schema the document names compiles. (Every answer the other tests get is checked
//! against the document as it arrives: see `support::openapi::check`.)

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::openapi::{document, template_of, uri_fragment};
use crate::support::{Call, TestCenter};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn documented() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_served() {
    let served: BTreeSet<(String, String)> = kpress_center::routes::table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
    assert_eq!(
        served.len(),
        kpress_center::routes::table().len(),
        "a route is listed twice"
    );
}

/// The path with every `{parameter}` filled in.
fn sample(template: &str) -> String {
    template
        .split('/')
        .map(|part| match part {
            "{index}" => "0",
            "{file}" => "app.js",
            p if p.starts_with('{') => "some-run",
            p => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_methods() {
    let c = TestCenter::sqlite().await;
    let documented = documented();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for template in paths {
        let path = sample(template);
        assert_eq!(template_of(&path).as_deref(), Some(template.as_str()));
        for method in METHODS {
            let upper: &'static str = match method {
                "get" => "GET",
                "post" => "POST",
                "put" => "PUT",
                "delete" => "DELETE",
                _ => "PATCH",
            };
            let r = c.send(Call::new(upper, &path)).await;
            let listed = documented.contains(&(method.to_string(), template.clone()));
            assert_eq!(
                r.status != 405,
                listed,
                "{upper} {path}: {} {}",
                r.status,
                r.text()
            );
        }
    }
}

#[test]
fn every_reference_resolves_and_every_schema_compiles() {
    let doc = document();
    let text = serde_json::to_string(doc).expect("json");
    let mut refs = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"$ref\":\"#") {
        rest = &rest[at + 9..];
        let end = rest.find('"').expect("end of reference");
        refs.insert(rest[..end].to_string());
        rest = &rest[end..];
    }
    assert!(refs.len() > 20, "{refs:?}");
    for r in refs {
        assert!(
            doc.pointer(&r).is_some_and(Value::is_object),
            "openapi.yaml refers to {r}, which does not exist"
        );
        if r.starts_with("/components/schemas/") {
            // The schema compiles (with all it refers to) and rejects a wrong type.
            let root = {
                let mut root = doc.clone();
                root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
                root["$ref"] = uri_fragment(&r).into();
                root
            };
            let v = jsonschema::validator_for(&root)
                .unwrap_or_else(|e| panic!("{r} does not compile: {e}"));
            if doc.pointer(&r).and_then(|s| s.get("type")) == Some(&Value::from("object")) {
                assert!(!v.is_valid(&Value::from(42)), "{r} accepts a number");
            }
        }
    }
}
