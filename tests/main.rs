//! Integration tests: the real server, real runc, a real registry, the CLI binary and the
//! official Python SDK. Run as root (runc, mounts, loop devices): `bash tests/run.sh`.
//!
//! Where a test lives: a unit test is a `tests` module inside the module it tests, at the end
//! of the file (`#[cfg(test)] mod tests { … }`) or, when that would make the file long, in
//! `<module>/tests.rs` (a larger suite in `<module>/tests/`) declared `#[cfg(test)] mod
//! tests;`, Rust's default path. A test that needs root, runc, a registry or the built binary
//! is an end-to-end test and lives here instead: a module of this one test target
//! (`autotests = false`), run by `cargo test --test main -- <filter>`.

mod common;

mod agent_forwarding;
mod api_surface;
mod browser;
mod capture;
mod cli_commands;
mod console;
mod durability;
mod egress;
mod examples;
mod images;
mod isolation;
mod repl;
mod resources;
mod runtime;
mod script;
mod sdk;
mod sdk_conformance;
mod sdk_dataplane_exec;
mod sdk_dataplane_files;
mod sdk_service;
mod sdk_tunnel;
mod server_features;
mod ssh;
mod tunnel_cli;
mod tunnel_dataplane;
mod workflow;
