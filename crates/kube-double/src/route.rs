//! Parsing of API paths into what they address. Kept apart from the server so that new
//! endpoints (watch streams, `pods/NAME/log`) extend one enum-free struct instead of the
//! request handler.

/// What an API path addresses: a collection when `name` is `None`, one object otherwise, and
/// a subresource of that object when `subresource` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// API group; empty for the core group (`/api/v1`).
    pub group: String,
    /// API version.
    pub version: String,
    /// URL plural of the resource type.
    pub plural: String,
    /// Namespace from a `/namespaces/NS/` path segment.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource such as `status` or `log`.
    pub subresource: Option<String>,
}

/// Subresources of a `Namespace` object, which would otherwise read as a namespaced plural in
/// `/api/v1/namespaces/NAME/SUB`.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl Route {
    /// Parses `/api/v1/...` and `/apis/GROUP/VERSION/...`; `None` for anything else.
    pub fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, plural, tail @ ..]
                if !(tail.is_empty() && NAMESPACE_SUBRESOURCES.contains(plural)) =>
            {
                (Some(*ns), &rest[2..])
            }
            _ => (None, rest),
        };
        let (plural, name, subresource) = match rest {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(*name), None),
            [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
            _ => return None,
        };
        if plural.is_empty() || name.is_some_and(str::is_empty) {
            return None;
        }
        Some(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(g: &str, p: &str, ns: Option<&str>, n: Option<&str>, s: Option<&str>) -> Route {
        Route {
            group: g.into(),
            version: "v1".into(),
            plural: p.into(),
            namespace: ns.map(Into::into),
            name: n.map(Into::into),
            subresource: s.map(Into::into),
        }
    }

    #[test]
    fn paths_parse_into_collections_objects_and_subresources() {
        let cases = [
            ("/api/v1/pods", route("", "pods", None, None, None)),
            (
                "/api/v1/namespaces/a/pods",
                route("", "pods", Some("a"), None, None),
            ),
            (
                "/api/v1/namespaces/a/pods/p",
                route("", "pods", Some("a"), Some("p"), None),
            ),
            (
                "/api/v1/namespaces/a/pods/p/log",
                route("", "pods", Some("a"), Some("p"), Some("log")),
            ),
            (
                "/api/v1/namespaces",
                route("", "namespaces", None, None, None),
            ),
            (
                "/api/v1/namespaces/a",
                route("", "namespaces", None, Some("a"), None),
            ),
            (
                "/api/v1/namespaces/a/status",
                route("", "namespaces", None, Some("a"), Some("status")),
            ),
            (
                "/apis/apps/v1/namespaces/a/deployments/d",
                route("apps", "deployments", Some("a"), Some("d"), None),
            ),
            (
                "/apis/apps/v1/deployments",
                route("apps", "deployments", None, None, None),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(Route::parse(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn foreign_paths_do_not_parse() {
        for path in [
            "/",
            "/healthz",
            "/api",
            "/apis/apps",
            "/api/v1/a/b/c/d",
            "/api/v1/pods//x",
        ] {
            assert_eq!(Route::parse(path), None, "{path}");
        }
    }
}
