//! Integration tests of the audit library: the fixture dump end to end, loading, the JSON
//! Schema, the live audit through the API double, and prune.

mod common;
mod live;
mod load;
mod offline;
mod prune;
mod schema;
