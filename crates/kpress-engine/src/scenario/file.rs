//! The scenario file exactly as written (k6's vocabulary, camelCase keys). Serde reads
//! it with `deny_unknown_fields`, so a typo is an error at its line, never ignored;
//! cross-field rules are checked afterwards in `validate`.

use std::fmt;
use std::time::Duration;

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileScenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub defaults: FileDefaults,
    pub scenarios: IndexMap<String, FileExecutor>,
    #[serde(default)]
    pub thresholds: IndexMap<String, Vec<FileThreshold>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileDefaults {
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default, rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: bool,
    pub http_version: Option<String>,
    #[serde(default)]
    pub no_connection_reuse: bool,
    /// PEM certificates to trust besides the Mozilla roots (a private CA).
    #[serde(default, rename = "tlsCACerts")]
    pub tls_ca_certs: Option<String>,
}

/// One entry of `scenarios:`. Every executor's parameters are accepted here and the
/// ones the chosen executor does not use are rejected in `validate`, which keeps serde's
/// line numbers (an internally tagged enum would buffer the map and lose them).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileExecutor {
    pub executor: String,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub start_time: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub graceful_stop: Option<Duration>,
    #[serde(default, rename = "vus")]
    pub vus: Option<u64>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub max_duration: Option<Duration>,
    #[serde(rename = "startVUs")]
    pub start_vus: Option<u64>,
    pub stages: Option<Vec<FileStage>>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub graceful_ramp_down: Option<Duration>,
    pub rate: Option<f64>,
    pub start_rate: Option<f64>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub time_unit: Option<Duration>,
    #[serde(rename = "preAllocatedVUs")]
    pub pre_allocated_vus: Option<u64>,
    #[serde(rename = "maxVUs")]
    pub max_vus: Option<u64>,
    #[serde(default)]
    pub requests: Vec<FileRequest>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStage {
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(schema_with = "duration_text")]
    pub duration: Duration,
    pub target: f64,
}

/// A request: the short form `"GET /path"` or the full mapping.
#[derive(Debug)]
pub struct FileRequest(pub FileRequestFull);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileRequestFull {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: Option<FileExpect>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExpect {
    #[serde(default)]
    pub status: Option<StatusList>,
}

/// `status: 200` or `status: [200, 201]`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatusList(pub Vec<u16>);

/// A threshold: `"p(99)<250ms"` or `{ threshold, abortOnFail, delayAbortEval }`.
#[derive(Debug)]
pub struct FileThreshold(pub FileThresholdFull);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileThresholdFull {
    pub threshold: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    #[schemars(schema_with = "duration_text")]
    pub delay_abort_eval: Option<Duration>,
}

impl<'de> Deserialize<'de> for FileRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileRequest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a request: `METHOD URL` or a mapping with `method` and `url`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileRequest, E> {
                let mut parts = v.split_whitespace();
                let (method, url) = match (parts.next(), parts.next(), parts.next()) {
                    (Some(url), None, None) => ("GET", url),
                    (Some(method), Some(url), None) => (method, url),
                    _ => {
                        return Err(E::custom(format!(
                            "`{v}` is not a request: write `METHOD URL`, e.g. `GET /`"
                        )))
                    }
                };
                Ok(FileRequest(FileRequestFull {
                    method: method.to_string(),
                    url: url.to_string(),
                    ..FileRequestFull::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileRequest, A::Error> {
                FileRequestFull::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FileRequest)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FileThreshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileThreshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a threshold such as `p(99)<250ms`, or a mapping with `threshold`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileThreshold, E> {
                Ok(FileThreshold(FileThresholdFull {
                    threshold: v.to_string(),
                    abort_on_fail: false,
                    delay_abort_eval: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileThreshold, A::Error> {
                FileThresholdFull::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FileThreshold)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn status<E: de::Error>(v: u64) -> Result<u16, E> {
            match u16::try_from(v) {
                Ok(s) if (100..=599).contains(&s) => Ok(s),
                _ => Err(E::custom(format!("`{v}` is not an HTTP status (100-599)"))),
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an HTTP status or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusList, E> {
                Ok(StatusList(vec![status(v)?]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusList, E> {
                Err(E::custom(format!("`{v}` is not an HTTP status (100-599)")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    out.push(status(v)?);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("the list of expected statuses is empty"));
                }
                Ok(StatusList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration as written in scenario files: `250ms`, `30s`, `1m30s`, `1.5h`, or `0`.
fn duration_text(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A duration: 250ms, 30s, 1m30s, 1.5h, or 0.",
        "type": "string",
        "pattern": "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h|d))+)$"
    })
}

impl JsonSchema for FileRequest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Request".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let full = generator.subschema_for::<FileRequestFull>();
        json_schema!({
            "description": "A request: `METHOD URL` (or just `URL` for GET), or a mapping.",
            "anyOf": [{ "type": "string", "pattern": "^\\s*(\\S+\\s+)?\\S+\\s*$" }, full]
        })
    }
}

impl JsonSchema for FileThreshold {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Threshold".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let full = generator.subschema_for::<FileThresholdFull>();
        json_schema!({
            "description": "A threshold such as `p(99)<250ms`, or a mapping with `threshold`, `abortOnFail`, `delayAbortEval`.",
            "anyOf": [{ "type": "string" }, full]
        })
    }
}

impl JsonSchema for StatusList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An HTTP status, or a list of them.",
            "anyOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "array", "minItems": 1, "items": { "type": "integer", "minimum": 100, "maximum": 599 } }
            ]
        })
    }
}

/// The JSON Schema of the scenario file, for editors and CI checks
/// (committed as `schema/scenario.schema.json`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FileScenario)).unwrap_or_default()
}
