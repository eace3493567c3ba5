//! A command's stdout pipe, widened from the kernel's 64 KiB to 1 MiB: a program that
//! writes a page at a time can then run on while the agent sleeps between reads (see the
//! pump in `lifecycle`) instead of paying for a wake-up of the agent with every page.
//!
//! Pipe memory counts against a per-user budget (`fs.pipe-user-pages-soft`, 64 MiB by
//! default), and every process of a sandbox's root shares one host user. Past that budget
//! the kernel gives *new* pipes of that user only two pages, which would slow the sandbox's
//! own shell pipelines. So at most [`MOST_WIDENED`] pipes are wide at once (a quarter of
//! the default budget); the others keep the default size.

use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::log::agent_log;

const PIPE_SIZE: libc::c_int = 1 << 20;
const DEFAULT_PIPE_SIZE: libc::c_int = 64 * 1024;
const MOST_WIDENED: usize = 16;
/// Drain-and-shrink rounds tried when the agent lets go of a wide pipe.
const SHRINK_ATTEMPTS: usize = 3;

/// Pipes of this agent that are wide now.
static WIDENED: AtomicUsize = AtomicUsize::new(0);

/// A pipe's reading end, wide while it lives if the budget allowed.
pub struct WidePipe<R: AsRawFd> {
    inner: R,
    /// The count this pipe is in, when it was widened.
    widened: Option<&'static AtomicUsize>,
}

/// Widens `pipe` if fewer than [`MOST_WIDENED`] pipes are wide. Best effort: a refusal by
/// the kernel leaves the pipe as it was.
pub fn widen<R: AsRawFd>(pipe: R) -> WidePipe<R> {
    widen_counted(pipe, &WIDENED)
}

impl<R: AsRawFd> WidePipe<R> {
    /// Whether the pipe is wide: it was widened, not left at the kernel's size (past
    /// [`MOST_WIDENED`], or when the kernel refused).
    pub fn is_wide(&self) -> bool {
        self.widened.is_some()
    }
}

fn widen_counted<R: AsRawFd>(pipe: R, wide: &'static AtomicUsize) -> WidePipe<R> {
    let mut widened = wide.fetch_add(1, Ordering::Relaxed) < MOST_WIDENED;
    if widened {
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; failure changes nothing.
        widened = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) } >= 0;
    }
    if !widened {
        wide.fetch_sub(1, Ordering::Relaxed);
    }
    WidePipe {
        inner: pipe,
        widened: widened.then_some(wide),
    }
}

impl<R: AsRawFd> Drop for WidePipe<R> {
    /// Gives the pipe its default size back: the agent stops reading at end of file, but also
    /// after a grace period while a writer lives on (a background process that kept stdout
    /// after its command ended), and the pipe would otherwise stay charged at 1 MiB until
    /// that process closes it. What is unread is thrown away first (nobody will read it), as
    /// a pipe cannot shrink below what it holds.
    fn drop(&mut self) {
        let Some(wide) = self.widened.take() else {
            return;
        };
        let fd = self.inner.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own and are about to close: made non-blocking
        // (tokio's already is) so the drain below can never wait.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        // Only what is there now is drained: a writer that never stops must not keep this
        // thread here. It may refill the pipe between drain and resize (the kernel then
        // refuses with EBUSY), so a few rounds are tried; past them the pipe stays wide until
        // that writer closes it, and the log says so.
        let shrunk = (0..SHRINK_ATTEMPTS).any(|_| {
            drain_what_is_there(fd);
            // SAFETY: F_SETPIPE_SZ on a descriptor we own; a refusal changes nothing.
            unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, DEFAULT_PIPE_SIZE) >= 0 }
        });
        if !shrunk {
            agent_log!(
                "a command's output pipe stays at 1 MiB: its writer lives on and keeps it full"
            );
        }
        wide.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads and throws away what `fd` (non-blocking) holds now, and no more.
fn drain_what_is_there(fd: libc::c_int) {
    let mut scratch = [0u8; 16 * 1024];
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int we own; the reads go into a buffer we own and never
    // past its length.
    unsafe {
        libc::ioctl(fd, libc::FIONREAD, &mut pending);
        let mut left = usize::try_from(pending).unwrap_or(0);
        while left > 0 {
            let read = libc::read(fd, scratch.as_mut_ptr().cast(), left.min(scratch.len()));
            if read <= 0 {
                break;
            }
            left -= (read as usize).min(left);
        }
    }
}

impl<R: AsyncRead + AsRawFd + Unpin> AsyncRead for WidePipe<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_so_many_pipes_are_wide_at_once_and_a_closed_one_makes_room() {
        // A count of its own: the agent tests in this process spawn commands meanwhile.
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let open = || widen_counted(std::io::pipe().unwrap().0, &COUNT);
        // SAFETY: F_GETPIPE_SZ only reads the size of a pipe we hold.
        let size = |p: &WidePipe<std::io::PipeReader>| unsafe {
            libc::fcntl(p.inner.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let first = open();
        if first.widened.is_none() {
            // Not this code's doing: the host's pipe limits (`fs.pipe-max-size`, the user's
            // budget) refuse 1 MiB here.
            eprintln!("skipped: this host does not let a pipe grow to 1 MiB");
            return;
        }
        let mut pipes: Vec<_> = std::iter::once(first)
            .chain((1..MOST_WIDENED + 2).map(|_| open()))
            .collect();
        let (wide, narrow): (Vec<_>, Vec<_>) = pipes.iter().partition(|p| p.widened.is_some());
        assert_eq!(wide.len(), MOST_WIDENED);
        assert!(wide.iter().all(|p| size(p) == PIPE_SIZE));
        assert!(narrow.iter().all(|p| size(p) < PIPE_SIZE));
        pipes.remove(0);
        assert!(open().widened.is_some(), "a closed wide pipe made room");
        // A pipe whose writer lives on (a background process) holding unread output: closed,
        // it goes back to the default size, so it no longer counts against the budget.
        let (read, mut write) = std::io::pipe().unwrap();
        let held = read.try_clone().unwrap();
        let pipe = widen_counted(read, &COUNT);
        assert!(pipe.widened.is_some(), "room for one more wide pipe");
        std::io::Write::write_all(&mut write, &[7u8; 200 * 1024]).unwrap();
        drop(pipe);
        // SAFETY: F_GETPIPE_SZ only reads the size of a pipe we hold.
        let after = unsafe { libc::fcntl(held.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(after, DEFAULT_PIPE_SIZE);
        drop(pipes);
        assert_eq!(COUNT.load(Ordering::Relaxed), 0);
    }
}
