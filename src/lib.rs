//! `langsmith`: sandbox CLI, scriptable shell and local sandbox backend.
//!
//! One binary, three faces: `langsmith sandbox …` (the LangSmith CLI's sandbox commands),
//! a Rhai shell and script runner (`langsmith shell`, `langsmith run FILE.rhai`), and
//! `langsmith server`, a local backend implementing the LangSmith Sandbox API with runc
//! containers. The same binary also runs inside every sandbox as its agent (PID 1).
//!
//! "The LangSmith CLI", wherever the code says it, is the official `langsmith` command-line
//! tool: its sandbox commands are the reference for every flag, message, exit code and output
//! shape of ours, and the tests pin them.
//!
//! # The picture
//!
//! ```text
//!  shell user ─► cli (clap) ──┐
//!  REPL user ──► repl ────────┼─► script (Rhai engine + built-in scripts/sandbox/**.rhai)
//!  automation ─► file.rhai ───┘          │ objects: Snapshot · Sandbox · Command · Tunnel
//!                                        ▼
//!                         client (async REST + WebSocket exec + files + tunnels)
//!                                        │  LangSmith Sandbox API (HTTP + WebSocket)
//!            ┌───────────────────────────┴──────────────────────────┐
//!     LangSmith (cloud / self-hosted)                  server (local backend, Linux)
//!                                                      control plane + store (SQLite)
//!                                                      images (OCI pull → ext4 snapshot)
//!                                                      runtime (runc, cgroups, overlay)
//!                                                      data-plane proxy ─► agent (PID 1)
//! ```
//!
//! # The module graph
//!
//! Dependencies run one way, downwards. Each module may use only the ones listed after it
//! (a unit test, `src/tests.rs`, reads every `crate::…` and `super::…` path outside comments
//! and strings, and fails on any other edge):
//!
//! ```text
//!   cli ──────► any module below
//!   repl ─────► script, client, api, paths, text, term
//!   script ───► client, api, paths, text, term
//!   client ───► api, paths, term, ws_pipe
//!   server ───► proxy, runtime, api, paths, phases, ws_upgrade
//!   proxy ────► api
//!   runtime ──► api, phases, shared_memory_child
//!   agent ────► api, shared_memory_child, ws_pipe, ws_upgrade
//!   api, paths, phases, shared_memory_child, text, term, ws_pipe, ws_upgrade: leaves
//! ```
//!
//! * [`api`] — wire types shared by client, server and agent: models, exec messages, file
//!   shapes, the error body and its kinds. No I/O. A leaf.
//! * [`paths`] — every decision about where state, history and user scripts live,
//!   for the CLI and the server alike. A leaf.
//! * [`phases`] — where an operation's time went: per-phase timings logged at debug level
//!   (`LANGSMITH_LOG=debug`). A leaf.
//! * [`shared_memory_child`] — a child process that shares this one's memory until its
//!   `exec` (`clone(CLONE_VM)`), and the rule such a child keeps. A leaf.
//! * [`text`], [`term`] — text helpers with the LangSmith CLI's exact semantics (Go `%q` quoting,
//!   size strings) and the local terminal (raw mode, resize and key events). Leaves.
//! * [`ws_pipe`] — a WebSocket read and written as bytes: the carrier of a port tunnel's
//!   yamux session, at both ends (client and agent). A leaf.
//! * [`ws_upgrade`] — the answer to a WebSocket upgrade, for the agent's tunnel and the
//!   server's exec bridge, which take the upgraded connection themselves. A leaf.
//! * [`client`] — the native async client of the Sandbox API; nothing in it assumes the local
//!   backend, except `client::embedded`, which finds or starts one when none is configured.
//! * [`script`] — the Rhai engine, its `Snapshot`/`Sandbox`/`Command` objects, the rendering
//!   of their values, and the built-in scripts behind every `sandbox` subcommand.
//! * [`repl`] — `langsmith shell`: completion, hints, history, Ctrl-C.
//! * [`cli`] — the clap command tree, dispatch to scripts and the one edge where errors
//!   become messages and exit codes. The only module that may import any other.
//! * [`server`] — the local backend: HTTP routes, validation, the SQLite store, snapshot
//!   builds (`server::images`), lifecycle tasks, the reaper and the data-plane proxy.
//! * [`proxy`] — the egress proxy: each sandbox's DNS stub, the per-connection checks and
//!   `access_control` decisions, the upstream dial and splice, and the egress log.
//! * [`runtime`] — isolation: ext4 images, idmapped layers and overlay root filesystems, user
//!   namespaces, OCI bundles, runc, cgroups, seccomp. Knows nothing of HTTP.
//! * [`agent`] — the in-sandbox PID 1: reaps zombies and serves exec sessions and files on a
//!   unix socket. Shares only [`api`] with the rest.
//!
//! # Where each concept lives
//!
//! | concept | module |
//! |---|---|
//! | a `sandbox` subcommand | `scripts/sandbox/<path>.rhai`, embedded by rule; its flags in the script's header |
//! | how values print (JSON, `--format pretty` tables) | `script` (next to the objects it renders) |
//! | exit codes and error lines of the CLI | `cli` |
//! | endpoint, API key, workspace | `client::config` |
//! | resource defaults and limits | `server::resources`, `server::validate` |
//! | durable records (snapshots, sandboxes, registries) | `server::store`: SQLite on threads of its own, never on an async worker |
//! | boot / stop / destroy, and the one per-sandbox lock | `server::lifecycle`, `server::locks`, `runtime` |
//! | idle stop, delete after stop | the server's reaper |
//! | pulling images, writing ext4 snapshots | `server::images` |
//! | namespaces, capabilities, seccomp, cgroups | `runtime` (`hardening`, `bundle`) |
//! | a sandbox's host ids, its layers as it sees them | `runtime` (`id_range`, `idmapped`, `runc_view`) |
//! | exec sessions, replay, files, glob/grep | `agent` |
//! | service URLs, download links, their origins | `server::service` (the agent's `connect` dials the port) |
//!
//! # The path of a create
//!
//! 1. `langsmith sandbox create NAME --snapshot-id ID --wait`: `cli` parses the flags from
//!    the header of `scripts/sandbox/create.rhai` and runs the script, which calls
//!    `sandbox_create(#{…})`.
//! 2. The script's call crosses the `script::bridge` onto the tokio runtime; [`client`] sends
//!    `POST /v2/sandboxes/boxes` with `X-Api-Key` (starting a local server first when no
//!    endpoint is configured).
//! 3. The server authenticates the key, validates the body (422 naming the field), checks the
//!    snapshot is ready, writes the record as `provisioning` (durably, before answering) and
//!    spawns a boot task, so a client hanging up never interrupts it.
//! 4. The boot task, under the sandbox's lock, asks [`runtime`] to start it: claim a host id
//!    range for its user namespace, loop-mount the snapshot image read-only, create or grow
//!    the sandbox's own ext4 upper layer, mount both idmapped onto that range, write the OCI
//!    bundle (namespaces, cgroup limits, seccomp, capabilities, the agent mounted read-only as
//!    PID 1), mount the overlay in a mount namespace made for runc alone, `runc run -d` in
//!    it, then wait for the agent's socket to answer. The record becomes `ready` (or
//!    `failed` with a message) in the store.
//! 5. With `wait_for_ready` the create answers once the record is `ready`; the script's value
//!    (a `Sandbox` object) is rendered as JSON or a table by the script layer and printed.
//!
//! # The path of an exec
//!
//! 1. `langsmith sandbox exec NAME -- CMD`: `scripts/sandbox/exec.rhai` resolves the sandbox
//!    (its `dataplane_url`) and runs `Sandbox.exec` in streaming mode.
//! 2. [`client`] opens `WS {dataplane_url}/execute/ws` with `X-Api-Key` and sends the
//!    `execute` message (command, env, cwd, timeout, PTY); a background task owns the socket,
//!    forwards stdin and Ctrl-C (`kill`), and reattaches from its byte offsets if the
//!    connection drops. `sandbox console` is the same session with a PTY, no command and
//!    `kill_on_disconnect` (it never reattaches), serving SSH-agent channels when asked.
//!    Both only copy output to a descriptor, so they ask (by a request header) for output in
//!    binary frames rather than JSON text: byte for byte, and nothing to escape
//!    ([`api::exec_frames`]). The official SDKs never ask and get the protocol as specified.
//! 3. The server's data-plane proxy authenticates, wakes a stopped sandbox, and bridges the
//!    WebSocket to the agent's unix socket message by message; no credential is forwarded.
//! 4. The agent spawns the command in its own process group (on a PTY if asked), keeps each
//!    output stream in a bounded buffer addressed by absolute offsets, and streams chunks and
//!    finally the exit code. While output streams (reads that follow each other within a
//!    millisecond), the agent lets the pipe fill for up to a millisecond before reading on,
//!    and a binary frame waits as long for 64 KiB: a program writing a page at a time does
//!    not cost a message per page at every hop. Sessions live in the agent, so they outlive
//!    the client's socket and a restart of the server.
//! 5. The script layer writes the chunks to stdout/stderr as they arrive; the CLI exits with
//!    the remote exit code (128+N for a signal).
//!
//! # Tests
//!
//! Unit tests sit next to the code; `tests/` holds the end-to-end suites that start the real
//! server, runc containers, a registry on loopback and the official Python SDK.

pub mod api;
pub mod cli;
pub mod client;
pub mod paths;
pub mod phases;
pub mod repl;
pub mod script;
pub mod term;
pub mod text;
pub mod ws_pipe;
pub mod ws_upgrade;

#[cfg(target_os = "linux")]
pub mod agent;
#[cfg(target_os = "linux")]
pub mod proxy;
#[cfg(target_os = "linux")]
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod server;
#[cfg(target_os = "linux")]
pub mod shared_memory_child;

#[cfg(test)]
mod tests;
