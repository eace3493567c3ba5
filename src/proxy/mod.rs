//! The egress proxy's rules: what a sandbox's outgoing connections may reach.
//!
//! * `access` — `access_control` parsed, validated (422 naming the entry) and decided.
//!
//! The server validates every `proxy_config` with it on create and update; enforcing the
//! verdicts on a sandbox's connections is not wired in yet (the README's known gaps).

pub mod access;
