//! `langsmith`: sandbox CLI, scriptable shell and local sandbox backend.
//!
//! Architecture map (see DESIGN.md for the whole picture):
//!
//! ```text
//!  shell user ─► cli (clap) ──┐
//!  REPL user ──► repl ────────┼─► script (Rhai engine + built-in scripts/sandbox/**.rhai)
//!  automation ─► file.rhai ───┘          │ bindings: Snapshot · Sandbox · Command
//!                                        ▼
//!                         client (async REST + WebSocket exec + files)
//!                                        │  LangSmith Sandbox API
//!            ┌───────────────────────────┴──────────────────────────┐
//!     LangSmith (cloud / self-hosted)                  server (local backend, Linux)
//!                                                      control plane + store (SQLite)
//!                                                      images (OCI pull → ext4 snapshot)
//!                                                      runtime (runc, cgroups, overlay)
//!                                                      dataplane proxy ─► agent (PID 1)
//! ```
//!
//! * [`api`] — wire types shared by client, server and agent. No I/O.
//! * [`client`] — the native async client of the Sandbox API.
//! * [`script`] — the Rhai engine, its object bindings and the built-in scripts.
//! * [`cli`] — the clap command tree, output formatting and exit codes.
//! * [`repl`] — the interactive shell.
//! * [`server`] — the local backend: control plane, store, image pulls, data-plane proxy.
//! * [`runtime`] — isolation: OCI bundles, runc, cgroups, ext4 + overlay root filesystems.
//! * [`agent`] — the in-sandbox agent (PID 1) serving exec sessions and files.
//! * [`paths`] — where state, user scripts and history live; shared by client and server.
//! * [`text`] — text helpers: Go-style quoting, size strings, table columns.
//! * [`term`] — the local terminal: raw mode, window size, keystrokes and signals.

pub mod api;
pub mod cli;
pub mod client;
pub mod paths;
pub mod repl;
pub mod script;
pub mod term;
pub mod text;

#[cfg(target_os = "linux")]
pub mod agent;
#[cfg(target_os = "linux")]
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod server;
