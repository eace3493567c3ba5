//! The agent's end of a pseudo-terminal: an async reader/writer over the PTY master and the
//! window-size control (`resize`). A master read failing with EIO means every slave holder is
//! gone, which is the PTY's end-of-file.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Window size a PTY starts with until the client sends `resize`.
const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;

/// Shared handle on a non-blocking PTY master.
#[derive(Clone)]
pub struct PtyMaster {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl PtyMaster {
    /// Opens a PTY pair sized 80×24; returns the master and the slave for the child's stdio.
    ///
    /// Both ends are opened close-on-exec, atomically: a command another session spawns in
    /// the meantime (under another user, perhaps) must not inherit this terminal, which
    /// would let it read and type into it, and keep it open after this session let it go.
    /// (`openpty` opens them inheritable, and marking them afterwards leaves that window.)
    pub fn open() -> io::Result<(PtyMaster, OwnedFd)> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let master = nix::pty::posix_openpt(flags | OFlag::O_NONBLOCK)?;
        nix::pty::grantpt(&master)?;
        nix::pty::unlockpt(&master)?;
        // The slave through the master itself (TIOCGPTPEER): no second lookup by name, and
        // nothing between the two opens for a concurrent spawn to inherit.
        // SAFETY: TIOCGPTPEER takes open flags as its argument and returns a new descriptor.
        let slave = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                flags.bits() as libc::c_ulong,
            )
        };
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the ioctl returned a new descriptor that nothing else owns.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        // SAFETY: an OwnedFd is a valid descriptor that stays open and unchanged until the
        // AsyncFd owning it is dropped.
        let registered = unsafe { AsyncFd::register(OwnedFd::from(master)) }?;
        let master = PtyMaster {
            fd: Arc::new(registered),
        };
        master.resize(DEFAULT_COLS, DEFAULT_ROWS)?;
        Ok((master, slave))
    }

    /// Applies a window size (TIOCSWINSZ); the kernel sends SIGWINCH to the foreground group.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let result = guard.try_io(|fd| {
                // SAFETY: reads into a buffer we exclusively borrow, bounded by its length.
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match result {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let result = guard.try_io(|fd| {
                // SAFETY: writes from a slice we borrow, bounded by its length.
                let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match result {
                Ok(outcome) => return Poll::Ready(outcome),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::RawFd;

    fn flags(fd: RawFd, get: libc::c_int) -> libc::c_int {
        // SAFETY: a plain fcntl query on a descriptor the test keeps open.
        unsafe { libc::fcntl(fd, get) }
    }

    /// Neither end may reach a command spawned meanwhile, and the master never blocks a
    /// worker; the slave is the master's own peer (a write to one is read from the other).
    #[tokio::test]
    async fn both_ends_are_close_on_exec_and_the_slave_is_the_masters_peer() {
        use tokio::io::AsyncReadExt;
        let (mut master, slave) = PtyMaster::open().unwrap();
        for fd in [master.fd.as_raw_fd(), slave.as_raw_fd()] {
            assert_ne!(flags(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
        }
        assert_ne!(
            flags(master.fd.as_raw_fd(), libc::F_GETFL) & libc::O_NONBLOCK,
            0
        );
        std::fs::File::from(slave).write_all(b"peer\n").unwrap();
        // The terminal may hand the line over in more than one piece.
        let mut seen = Vec::new();
        let whole_line = async {
            while !seen.ends_with(b"\r\n") {
                let mut read = [0u8; 16];
                let n = master.read(&mut read).await.unwrap();
                seen.extend_from_slice(&read[..n]);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), whole_line)
            .await
            .expect("the line written to the slave reaches the master");
        assert_eq!(seen, b"peer\r\n");
    }
}
