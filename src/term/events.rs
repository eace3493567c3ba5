//! What the local terminal tells a running console: keystrokes, window changes (SIGWINCH) and
//! requests to end (SIGINT, SIGTERM, SIGHUP — a clean end that restores the terminal instead
//! of killing the process in raw mode).
//!
//! One plain thread polls stdin, a signal pipe and a stop pipe. The signal handlers only write
//! the signal's number to the pipe (async-signal-safe) and are installed for the console's
//! lifetime only: [`TerminalEvents`]'s drop puts the previous handlers back, so a REPL that
//! opened a console still dies of SIGTERM/SIGHUP afterwards. A thread blocked in `read(0)`
//! could not be stopped and would swallow the next keystroke meant for the REPL, hence the poll.
//!
//! The handlers are in place before the console dials, so a Ctrl-C while it opens ends it
//! cleanly too ([`TerminalEvents::stop_requested`]) instead of reaching whoever listened before.
//! The drop waits until no handler runs any more before it closes the pipe: a handler caught
//! mid-way on another thread must not write into a file that reused the descriptor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::fcntl::OFlag;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use tokio::sync::{mpsc, watch};

use super::ConsoleInput;
use super::terminal::window_size;

/// Bytes read from the keyboard at a time (the LangSmith CLI's read size).
const READ_SIZE: usize = 4096;
const SIGNALS: [Signal; 4] = [
    Signal::SIGWINCH,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
];

/// Write end of the signal pipe while a console runs, else -1.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
/// Handlers running right now, counted before they read [`SIGNAL_PIPE`].
static HANDLERS_RUNNING: AtomicUsize = AtomicUsize::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    HANDLERS_RUNNING.fetch_add(1, Ordering::SeqCst);
    let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let saved = nix::errno::Errno::last_raw();
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe
        // (signals nobody has read yet) drops this one instead of blocking the handler.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        nix::errno::Errno::set_raw(saved);
    }
    HANDLERS_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

/// Feeds a console until dropped; dropping stops the thread and restores the signal handlers.
pub struct TerminalEvents {
    previous: Vec<(Signal, SigAction)>,
    stop: Option<OwnedFd>,
    signal_write: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Becomes `true` at the first SIGINT/SIGTERM/SIGHUP.
    stop_requested: watch::Receiver<bool>,
}

impl TerminalEvents {
    /// Installs the handlers and starts reading; call before raw mode so no signal can find
    /// the terminal raw with nobody to restore it.
    pub fn start(inputs: mpsc::Sender<ConsoleInput>) -> io::Result<TerminalEvents> {
        let (signal_read, signal_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(io::Error::from)?;
        let (stop_read, stop) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let (stopping, stop_requested) = watch::channel(false);
        let claimed = SIGNAL_PIPE.compare_exchange(
            -1,
            signal_write.as_raw_fd(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if claimed.is_err() {
            return Err(io::Error::other("another console is already running here"));
        }
        let mut events = TerminalEvents {
            previous: Vec::new(),
            stop: Some(stop),
            signal_write: Some(signal_write),
            thread: None,
            stop_requested,
        };
        let action = SigAction::new(
            SigHandler::Handler(forward_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in SIGNALS {
            // SAFETY: the handler only does async-signal-safe work (see `forward_signal`).
            let previous = unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
            events.previous.push((signal, previous));
        }
        let thread = std::thread::Builder::new()
            .name("console-terminal".into())
            .spawn(move || relay(stop_read, signal_read, inputs, stopping))?;
        events.thread = Some(thread);
        Ok(events)
    }

    /// Resolves once SIGINT, SIGTERM or SIGHUP asked the console to end (also sent as
    /// [`ConsoleInput::Stop`]); for the time before the relay reads the inputs.
    pub async fn stop_requested(&self) {
        let mut requested = self.stop_requested.clone();
        if requested.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await; // the relay ended without a request
        }
    }
}

impl Drop for TerminalEvents {
    fn drop(&mut self) {
        for (signal, previous) in self.previous.drain(..) {
            // SAFETY: reinstalls the action that was in place before `start`.
            let _ = unsafe { sigaction(signal, &previous) };
        }
        SIGNAL_PIPE.store(-1, Ordering::SeqCst);
        // A handler counted after this point reads -1 (both are SeqCst); one counted before
        // may still write to the pipe, which stays open until it is done.
        while HANDLERS_RUNNING.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        drop(self.stop.take()); // the thread's poll sees the stop pipe's end
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        drop(self.signal_write.take());
    }
}

fn relay(
    stop: OwnedFd,
    signals: OwnedFd,
    inputs: mpsc::Sender<ConsoleInput>,
    stopping: watch::Sender<bool>,
) {
    let stdin = io::stdin();
    let mut stdin_open = true;
    let mut buf = [0u8; READ_SIZE];
    loop {
        let ready = match poll_readable([stdin.as_fd(), signals.as_fd(), stop.as_fd()], stdin_open)
        {
            Ok(ready) => ready,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if ready[2] {
            return; // stopped
        }
        if ready[1] {
            let Ok(n @ 1..) = nix::unistd::read(signals.as_fd(), &mut buf) else {
                continue;
            };
            for &signal in &buf[..n] {
                let input = match Signal::try_from(signal as libc::c_int) {
                    Ok(Signal::SIGWINCH) => match window_size() {
                        Some((cols, rows)) => ConsoleInput::Resize { cols, rows },
                        None => continue,
                    },
                    _ => {
                        stopping.send_replace(true);
                        ConsoleInput::Stop
                    }
                };
                // A resize nobody is reading yet (the console is still dialing) is dropped
                // rather than block this thread, which must stay free to see a stop signal;
                // the next resize carries the current size anyway.
                let sent = match input {
                    ConsoleInput::Resize { .. } => match inputs.try_send(input) {
                        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
                        _ => Ok(()),
                    },
                    input => inputs.blocking_send(input).map_err(|_| ()),
                };
                if sent.is_err() {
                    return;
                }
            }
        }
        if ready[0] {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                // End of input: the shell keeps running until it exits.
                Ok(0) | Err(nix::errno::Errno::EIO) => stdin_open = false,
                Ok(n) => {
                    if inputs
                        .blocking_send(ConsoleInput::Keys(buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}

/// Blocks until one of `fds` is readable (stdin is left out once it ended).
fn poll_readable(fds: [BorrowedFd<'_>; 3], stdin_open: bool) -> io::Result<[bool; 3]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    if !stdin_open {
        polled[0].fd = -1; // poll(2) skips negative descriptors
    }
    // SAFETY: `polled` is a valid array of pollfd for the duration of the call.
    let rc = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(polled.map(|p| p.revents != 0))
}
