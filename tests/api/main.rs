//! The black-box tests: one binary (one link of the crate), a module per domain, all
//! talking to real servers over HTTP and websocket. `helpers` starts them.

#[macro_use]
mod helpers;

mod admin;
mod appointments;
mod audit_outbox;
mod auth;
mod erasure;
mod foundation;
mod fuzz;
mod media;
mod posts;
mod startup;
mod telemetry;
mod users;
mod variables;
