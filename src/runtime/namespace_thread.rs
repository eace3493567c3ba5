//! Work done inside a sandbox's namespace by a thread made for it.
//!
//! `setns` moves only the calling thread. A pooled thread (tokio's blocking pool, an async
//! worker) that entered a sandbox's namespace would stay there and serve the next task in
//! it, so the work gets a thread of its own: it enters the namespace, does the work, and
//! ends with it. What the work returns comes back through a channel, for async callers
//! ([`Pending::wait`]) and blocking ones ([`Pending::wait_blocking`]) alike.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns, unshare};
use tokio::sync::oneshot;

/// Which namespace the thread enters.
#[derive(Debug, Clone, Copy)]
pub enum Namespace {
    /// A mount namespace (runc's view of the host).
    Mount,
    /// A network namespace (the sandbox's own).
    Network,
}

/// Why the work did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("no thread to do it: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot unshare the thread's filesystem attributes: {0}")]
    Unshare(#[source] Errno),
    #[error("cannot enter the namespace: {0}")]
    Enter(#[source] Errno),
    #[error("the thread that did it panicked")]
    Panicked,
}

/// What the thread will answer.
pub struct Pending<T>(oneshot::Receiver<Result<T, EnterError>>);

/// Starts a thread named `name` that enters `namespace` (a descriptor of a namespace of the
/// kind `kind`) and runs `work` there. The descriptor is closed once entered.
pub fn spawn<T: Send + 'static>(
    name: &str,
    kind: Namespace,
    namespace: OwnedFd,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<Pending<T>, EnterError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(enter(kind, namespace).map(|()| work()));
        })
        .map_err(EnterError::Thread)?;
    Ok(Pending(rx))
}

fn enter(kind: Namespace, namespace: OwnedFd) -> Result<(), EnterError> {
    let flag = match kind {
        Namespace::Mount => {
            // Threads share their filesystem attributes (root, working directory), and the
            // kernel refuses to move a thread that shares them to another mount namespace.
            unshare(CloneFlags::CLONE_FS).map_err(EnterError::Unshare)?;
            CloneFlags::CLONE_NEWNS
        }
        Namespace::Network => CloneFlags::CLONE_NEWNET,
    };
    setns(&namespace, flag).map_err(EnterError::Enter)
}

impl<T> Pending<T> {
    /// Waits for the work's answer without blocking an async worker.
    pub async fn wait(self) -> Result<T, EnterError> {
        answer(self.0.await)
    }

    /// Waits for the work's answer, blocking the calling thread: off the async workers only.
    pub fn wait_blocking(self) -> Result<T, EnterError> {
        answer(self.0.blocking_recv())
    }
}

fn answer<T>(
    received: Result<Result<T, EnterError>, oneshot::error::RecvError>,
) -> Result<T, EnterError> {
    match received {
        Ok(done) => done,
        // The sender went without a word: the thread unwound.
        Err(_) => Err(EnterError::Panicked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace of this process's own: entering it changes nothing the test process
    /// relies on. Needs root, as the server has; `None` (skipped) without it.
    fn own(kind: &str) -> Option<OwnedFd> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: entering a namespace needs root");
            return None;
        }
        Some(
            std::fs::File::open(format!("/proc/self/ns/{kind}"))
                .unwrap()
                .into(),
        )
    }

    /// The work runs on the named thread, in the namespace given (a new one, made by another
    /// thread for the test), and its answer comes back to an async caller and to a blocking
    /// one; a panic is reported, not propagated.
    #[tokio::test]
    async fn work_runs_on_its_own_thread_inside_the_namespace() {
        let (Some(mnt), Some(again)) = (own("mnt"), own("net")) else {
            return;
        };
        // A thread of its own makes a new network namespace and hands it over, and ends.
        let (other, other_path) = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let fd: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
                .unwrap()
                .into();
            (fd, std::fs::read_link("/proc/thread-self/ns/net").unwrap())
        })
        .join()
        .unwrap();
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(other_path, ours);
        let seen = spawn("ns-test", Namespace::Network, other, || {
            let thread = std::thread::current().name().map(str::to_string);
            (
                thread,
                std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            )
        })
        .unwrap()
        .wait()
        .await
        .unwrap();
        assert_eq!(seen, (Some("ns-test".to_string()), other_path));
        assert_eq!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            ours
        );
        let answer = tokio::task::spawn_blocking(move || {
            spawn("ns-test", Namespace::Mount, mnt, || 42)
                .unwrap()
                .wait_blocking()
        })
        .await
        .unwrap();
        assert_eq!(answer.unwrap(), 42);
        let panicked = spawn("ns-test", Namespace::Network, again, || {
            panic!("on purpose")
        });
        let error = panicked.unwrap().wait().await.unwrap_err();
        assert!(matches!(error, EnterError::Panicked), "{error}");
    }

    /// A descriptor that is not of the namespace kind asked for is refused by the kernel,
    /// and the work never runs.
    #[tokio::test]
    async fn a_descriptor_of_another_kind_is_an_error() {
        let Some(mnt) = own("mnt") else {
            return;
        };
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let error = spawn("ns-test", Namespace::Network, mnt, move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap()
        .wait()
        .await
        .unwrap_err();
        assert!(matches!(error, EnterError::Enter(Errno::EINVAL)), "{error}");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
