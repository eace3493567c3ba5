//! Integration tests: the real server, real runc, a real registry, the CLI binary and the
//! official Python SDK. Run as root (runc, mounts, loop devices): `bash tests/run.sh`.

mod common;

mod agent_forwarding;
mod api_surface;
mod capture;
mod cli_commands;
mod console;
mod durability;
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
mod server_features;
mod workflow;
