//! Test harness: the real `langsmith server` on `127.0.0.1:0`, a real `docker-registry` on
//! loopback, real images built with `umoci` and pushed with `skopeo`, and the CLI binary.

#![allow(dead_code)]

pub mod api;
pub mod cgroup;
pub mod cli;
pub mod echo_upstream;
pub mod host_tool;
pub mod image;
pub mod leftovers;
pub mod local_agent;
pub mod process;
pub mod registry;
pub mod sdk;
pub mod server;
pub mod upstream;
pub mod web;

pub use server::TestServer;
