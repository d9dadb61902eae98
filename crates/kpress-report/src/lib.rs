//! The conversation between runners and the management center. The center's server
//! (`kpress-center`) and the runners' client (`client`) share the `wire` types, so
//! the two sides cannot drift apart.

pub mod client;
pub mod wire;
