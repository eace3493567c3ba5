//! A child process that shares this process's memory until it calls `exec` or exits:
//! `clone(CLONE_VM | …)` on a stack of its own. It saves the copy of the page tables (and
//! the copy-on-write faults after) that a `fork` makes, only for an `exec` or an `_exit` to
//! throw it away. Used by the runtime (a user namespace's holder) and the agent (a command's
//! process). A leaf.
//!
//! The rule every such child keeps: it runs only system-call wrappers, on data prepared
//! before the clone. It never allocates, never takes a lock, and never returns into code
//! that reads `errno`: it shares the heap, and the thread-local state, of the thread that
//! cloned it.

use std::io;

/// Clones a child that runs `entry(arg)` on `stack`, with `flags` (which should include
/// `CLONE_VM` and the exit signal). Every signal is blocked in this thread across the
/// clone, so the child starts with every signal blocked: no handler of this process, which
/// would run on this process's data, can run in the child before the child has restored
/// the defaults it needs. Returns the child's pid.
///
/// # Safety
/// `entry` must keep the rule in the module documentation; `stack` and whatever `arg`
/// points to must stay valid for as long as the child uses them (until its `exec` or exit,
/// which `CLONE_VFORK` waits for, or until it is reaped).
pub unsafe fn clone(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    stack: &mut [u8],
    flags: libc::c_int,
    arg: *mut libc::c_void,
) -> io::Result<libc::pid_t> {
    // SAFETY: the stack's top is 16-byte aligned and within `stack`; the caller vouches for
    // `entry` and `arg`. The signal mask is restored before returning.
    unsafe {
        let mut all = std::mem::zeroed::<libc::sigset_t>();
        let mut before = std::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
        let top = stack.as_mut_ptr().add(stack.len());
        let top = top.sub(top as usize % 16);
        let pid = libc::clone(entry, top.cast(), flags, arg);
        let cloned = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        if pid < 0 { Err(cloned) } else { Ok(pid) }
    }
}
