//! The center's tests: one binary, one module per topic, driving the router with
//! `oneshot` on SQLite, then the same scenarios on a real PostgreSQL and over a socket.

mod support;

mod api;
mod auth;
mod hooks;
mod ingest;
mod lease;
mod limits;
mod metrics;
mod openapi;
mod postgres;
mod socket;
mod ui;
