//! Integration tests: the real server, real runc, a real registry, the CLI binary and the
//! official Python SDK. Run as root (runc, mounts, loop devices): `bash tests/run.sh`.

mod common;

mod api_surface;
mod durability;
mod isolation;
mod resources;
mod script;
mod sdk;
mod workflow;
