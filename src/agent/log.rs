//! PID 1's messages to its log (its stderr: a file on a small host tmpfs the sandbox never
//! sees, though its processes can write to it through `/proc/1/fd/2`).
//!
//! A message never fails and never panics: `eprintln!` panics when the write fails, which
//! would end PID 1 and with it the sandbox. When the log is full (a flood from inside, or
//! years of messages) it is emptied and a line says so, then the message is written: the
//! log is bounded by its tmpfs and rotated by truncation, and the newest lines survive.

use std::fmt::Arguments;
use std::io::Write;
use std::os::fd::AsFd;

/// Write `langsmith agent: MESSAGE` as one line to stderr, whatever state it is in.
pub fn line(message: Arguments<'_>) {
    let text = format!("langsmith agent: {message}\n");
    let mut stderr = std::io::stderr().lock();
    match stderr.write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if is_full(&e) && truncate(&stderr) => {
            let _ = stderr.write_all(b"langsmith agent: the log was full and was emptied\n");
            let _ = stderr.write_all(text.as_bytes());
        }
        // A closed or broken stderr: there is nowhere to say anything, and nothing to stop.
        Err(_) => {}
    }
}

/// `langsmith agent: …` to the log, like `eprintln!` but never failing.
macro_rules! agent_log {
    ($($arg:tt)*) => {
        $crate::agent::log::line(format_args!($($arg)*))
    };
}
pub(crate) use agent_log;

fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EFBIG))
}

/// Empty the log if it is a regular file (opened for appending, so the next write lands at
/// its start). Whether it was emptied.
fn truncate(stderr: &impl AsFd) -> bool {
    let fd = stderr.as_fd();
    let is_file =
        nix::sys::stat::fstat(fd).is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFREG);
    is_file && nix::unistd::ftruncate(fd, 0).is_ok()
}
