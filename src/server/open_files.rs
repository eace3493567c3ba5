//! The server's limit on open files, raised at start-up.
//!
//! Every sandbox keeps three of the server's descriptors open for as long as it runs (its
//! egress proxy's listener, its DNS stub's socket and the pidfd that watches its container),
//! one more for ten seconds after a WebSocket exec (the agent connection dialled ahead for
//! the next, see `agent_websocket`), and two per exec or file transfer in flight. A shell
//! commonly hands its processes a soft limit of 1024, at which creates began to fail with
//! "Too many open files" at about 300 idle sandboxes. A process may raise its own soft limit
//! up to its hard limit without any privilege, as most servers do at start-up.
//!
//! It is raised to the hard limit, but to no more than [`CEILING`]: every program the server
//! starts (runc, `nft`, `mke2fs`, `mmdebstrap` and the package tools it runs) inherits the
//! soft limit, and some programs close every descriptor up to it or use `select`, which
//! a limit in the millions (some container runtimes set the hard limit to about 2^30) would
//! make slow or break. [`CEILING`] descriptors are over 20 000 idle sandboxes, more than the
//! kernel's default number of process ids allows (see the README's scale figures). A
//! sandbox's own processes get their limit from the bundle (see `runtime::bundle`).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The highest soft limit the server raises itself to.
const CEILING: u64 = 65_536;

/// Descriptors an idle sandbox keeps open in the server: what the start-up log divides by.
const PER_IDLE_SANDBOX: u64 = 3;

/// The soft limit a server starts with `soft` and `hard` raises itself to.
fn raised(soft: u64, hard: u64) -> u64 {
    soft.max(hard.min(CEILING))
}

/// Raises this process's soft limit on open files (see [`raised`]), and says so in the log;
/// a failure is logged, not fatal (the server then serves as many sandboxes as the limit it
/// was given allows).
pub fn raise_and_log() {
    let result = getrlimit(Resource::RLIMIT_NOFILE).and_then(|(soft, hard)| {
        let after = raised(soft, hard);
        if after != soft {
            setrlimit(Resource::RLIMIT_NOFILE, after, hard)?;
        }
        Ok((soft, after))
    });
    match result {
        Ok((before, after)) if before != after => tracing::info!(
            "open file limit raised from {before} to {after} (about {} idle sandboxes)",
            after / PER_IDLE_SANDBOX
        ),
        Ok((_, after)) => tracing::info!(
            "open file limit {after} (about {} idle sandboxes)",
            after / PER_IDLE_SANDBOX
        ),
        Err(e) => tracing::warn!(
            "cannot raise the open file limit ({e}); each idle sandbox holds {PER_IDLE_SANDBOX} of the server's descriptors"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The raise itself is checked on a real server started with a low soft limit
    // (`tests/server_features/open_files.rs`).
    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one_but_not_past_the_ceiling() {
        assert_eq!(raised(1024, 20_000), 20_000);
        assert_eq!(raised(1024, 524_288), CEILING);
        assert_eq!(raised(1024, 1 << 30), CEILING);
        // Never lowered: a limit set higher on purpose stays.
        assert_eq!(raised(100_000, 1 << 20), 100_000);
        assert_eq!(raised(20_000, 20_000), 20_000);
    }
}
