//! Starting a command's process without copying the agent, and waiting for it.
//!
//! A `fork` copies the agent's page tables and marks every page copy-on-write, only for the
//! child to throw the copy away in its `exec`; the agent then pays a page fault for each page
//! it writes next. That was most of the agent's CPU for a short command (a profile of 500
//! `run("true")`: 0.9 ms of 1.5), and it grows with the agent's heap. So the child is made
//! with `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does: it borrows the agent's memory
//! on a stack of its own, and the calling thread sleeps until the child has called `exec`
//! (or failed). `posix_spawn` itself cannot be used: a command must also become the OOM
//! killer's first choice before it runs anything, which no spawn attribute can say.
//!
//! The child keeps the rule of [`crate::shared_memory_child`]: everything it reads is
//! prepared beforehand (no allocation, no lock in the child), and it starts with every
//! signal blocked, unblocking them only once every handler is back to its default, so no
//! handler of the agent's runs in it. It writes only its own result slot and the calling
//! thread's `errno`, which that thread, asleep until the child's `exec`, does not read.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::shared_memory_child;

/// The child's stack. It makes a few dozen system calls through libc and nothing else.
const CHILD_STACK: usize = 64 * 1024;
/// Where `execvp` looks when the environment has no `PATH` (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";
/// The interpreter for an executable without a `#!` line, as `execvp` runs it.
const SCRIPT_SHELL: &std::ffi::CStr = c"/bin/sh";

/// Everything a command's process is started with.
pub struct Launch {
    /// The program: a path, or a name looked up in the environment's `PATH`.
    pub program: OsString,
    /// `argv[1..]`; `argv[0]` is `program` as given.
    pub args: Vec<OsString>,
    /// The whole environment, in order.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<OsString>,
    /// `(uid, gid)` to run as; supplementary groups are dropped when switching from root.
    pub user: Option<(u32, u32)>,
    /// What becomes the child's descriptors 0, 1 and 2.
    pub stdio: [OwnedFd; 3],
    /// Makes descriptor 0 (a terminal) the child's controlling terminal.
    pub controlling_terminal: bool,
}

/// A step of the child's set-up, named in the error when it fails.
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    Setsid = 1,
    Stdio,
    ControllingTerminal,
    SetGid,
    SetUid,
    Chdir,
    Exec,
}

impl Step {
    fn from_i32(value: i32) -> Step {
        match value {
            1 => Step::Setsid,
            2 => Step::Stdio,
            3 => Step::ControllingTerminal,
            4 => Step::SetGid,
            5 => Step::SetUid,
            6 => Step::Chdir,
            _ => Step::Exec,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Step::Setsid => "start a session",
            Step::Stdio => "set up stdin, stdout and stderr",
            Step::ControllingTerminal => "take the terminal",
            Step::SetGid => "switch group",
            Step::SetUid => "switch user",
            Step::Chdir => "enter the working directory",
            Step::Exec => "execute",
        }
    }
}

/// What the child reads (raw pointers into strings [`start`] keeps alive) and the one slot it
/// writes: the step that failed and its `errno`.
struct Job {
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    /// `[/bin/sh, <the candidate>, argv[1..]…, NULL]`, for an executable without `#!`: the
    /// one array the child writes (its second slot), through this pointer into
    /// [`Strings`]-lifetime storage that nothing else reads meanwhile.
    script_argv: *mut *const libc::c_char,
    envp: Vec<*const libc::c_char>,
    cwd: Option<*const libc::c_char>,
    user: Option<(u32, u32)>,
    stdio: [RawFd; 3],
    controlling_terminal: bool,
    failed_step: AtomicI32,
    failed_errno: AtomicI32,
}

/// Starts `launch`. Returns once the program runs (its `exec` succeeded); a failure of any
/// step before is this call's error, and leaves no process behind.
pub fn start(launch: Launch) -> io::Result<ChildProcess> {
    let strings = Strings::new(&launch)?;
    let [stdin, stdout, stderr] = launch.stdio.map(above_standard_descriptors);
    let stdio = [stdin?, stdout?, stderr?];
    let mut script_argv: Vec<*const libc::c_char> = std::iter::once(SCRIPT_SHELL.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .chain(strings.argv.iter().skip(1).map(|arg| arg.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut job = Job {
        candidates: pointers(&strings.candidates),
        argv: pointers(&strings.argv),
        script_argv: script_argv.as_mut_ptr(),
        envp: pointers(&strings.env),
        cwd: strings.cwd.as_ref().map(|cwd| cwd.as_ptr()),
        user: launch.user,
        stdio: [
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ],
        controlling_terminal: launch.controlling_terminal,
        failed_step: AtomicI32::new(0),
        failed_errno: AtomicI32::new(0),
    };
    // SAFETY: a plain prctl on this process.
    let dumpable = launch
        .user
        .map(|_| unsafe { libc::prctl(libc::PR_GET_DUMPABLE) })
        .filter(|&value| value >= 0);
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the stack's top is 16-byte aligned and outlives the child's use of it: with
    // CLONE_VFORK this thread resumes only after the child's exec or exit. `job` and the
    // strings it points into live until then too. The child keeps the rules in the module
    // documentation; every signal stays blocked for it until its handlers are the defaults.
    // SAFETY: the child keeps the rules in the module documentation; `stack`, `job` and
    // the strings it points into outlive its use of them: with CLONE_VFORK this thread
    // resumes only after the child's exec or exit.
    let pid = unsafe {
        shared_memory_child::clone(
            child,
            &mut stack,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut job).cast(),
        )?
    };
    drop(stack);
    drop(stdio); // the child's copies are its 0, 1 and 2 now
    drop(script_argv);
    if let Some(dumpable) = dumpable {
        // Changing credentials marked the memory the child shared with the agent as not
        // dumpable, the agent's included: set back to what it was before the child.
        // SAFETY: a plain prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable) };
    }
    let mut process = ChildProcess {
        pid: pid as u32,
        status: None,
    };
    match job.failed_step.load(Ordering::Acquire) {
        0 => Ok(process),
        step => {
            // It has exited (127): reaped here so that no zombie is left.
            let _ = process.wait_blocking();
            let cause = io::Error::from_raw_os_error(job.failed_errno.load(Ordering::Acquire));
            Err(match Step::from_i32(step) {
                Step::Exec => cause,
                step => io::Error::new(cause.kind(), format!("could not {}: {cause}", step.what())),
            })
        }
    }
}

/// The C strings [`Job`] points into.
struct Strings {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: Option<CString>,
}

impl Strings {
    fn new(launch: &Launch) -> io::Result<Strings> {
        let path = launch
            .env
            .iter()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.as_os_str())
            .unwrap_or(OsStr::new(DEFAULT_PATH));
        let candidates = candidates(&launch.program, path)
            .into_iter()
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let argv = std::iter::once(&launch.program)
            .chain(&launch.args)
            .map(|arg| c_string(arg.clone()))
            .collect::<io::Result<_>>()?;
        let env = launch
            .env
            .iter()
            .map(|(key, value)| {
                let mut pair = key.clone();
                pair.push("=");
                pair.push(value);
                c_string(pair)
            })
            .collect::<io::Result<_>>()?;
        let cwd = launch.cwd.clone().map(c_string).transpose()?;
        Ok(Strings {
            candidates,
            argv,
            env,
            cwd,
        })
    }
}

/// The paths `execvp` would try for `program`, in order: `program` itself when it names a
/// path, otherwise `program` in each directory of `path` (an empty entry is the working
/// directory).
fn candidates(program: &OsStr, path: &OsStr) -> Vec<OsString> {
    if program.as_bytes().contains(&b'/') {
        return vec![program.to_owned()];
    }
    path.as_bytes()
        .split(|&byte| byte == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut candidate = OsStr::from_bytes(dir).to_owned();
            candidate.push("/");
            candidate.push(program);
            candidate
        })
        .collect()
}

fn c_string(value: OsString) -> io::Result<CString> {
    CString::new(value.into_vec()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a program, argument, variable or directory contains a NUL byte",
        )
    })
}

/// A NULL-terminated array of `strings`' pointers.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `fd`, moved to 3 or above if it is 0, 1 or 2, so that setting up one of the child's
/// standard descriptors cannot overwrite the source of another.
fn above_standard_descriptors(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor (owned here) or -1.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// The child, on its own stack in the agent's memory, until `exec`. Only libc calls that
/// neither allocate nor lock; `job` is read-only but for its failure slot.
extern "C" fn child(job: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `job` is the `Job` that `start` keeps alive until this child has exec'd or
    // exited; every call below is a plain system call wrapper.
    unsafe {
        let job = &*(job as *const Job);
        // Handlers back to the default (they are the agent's code and data); ignored signals
        // stay ignored, but for SIGPIPE, which the agent ignores and a command must not.
        for signal in 1..=libc::SIGRTMAX() {
            let mut current = std::mem::zeroed::<libc::sigaction>();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction != libc::SIG_DFL
                && (current.sa_sigaction != libc::SIG_IGN || signal == libc::SIGPIPE)
            {
                let mut default = std::mem::zeroed::<libc::sigaction>();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        first_to_go_under_oom();
        // Every command leads a session of its own, so one `killpg` reaches its whole tree.
        if libc::setsid() < 0 {
            fail(job, Step::Setsid);
        }
        for (target, &source) in job.stdio.iter().enumerate() {
            if libc::dup2(source, target as RawFd) < 0 {
                fail(job, Step::Stdio);
            }
        }
        if job.controlling_terminal && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            fail(job, Step::ControllingTerminal);
        }
        // Raw system calls: glibc's wrappers of these make every thread of a threaded
        // process change too, under a lock, which a child sharing the agent's memory must
        // not touch (they would act on the agent's threads).
        if let Some((uid, gid)) = job.user {
            if libc::syscall(libc::SYS_setgid, gid) < 0 {
                fail(job, Step::SetGid);
            }
            if libc::syscall(libc::SYS_getuid) == 0 {
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
            }
            if libc::syscall(libc::SYS_setuid, uid) < 0 {
                fail(job, Step::SetUid);
            }
        }
        if let Some(cwd) = job.cwd
            && libc::chdir(cwd) < 0
        {
            fail(job, Step::Chdir);
        }
        let mut none = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        exec_first_found(job);
        fail(job, Step::Exec)
    }
}

/// Records `step` and `errno` as the child's failure, and exits.
///
/// # Safety
/// Only from [`child`].
unsafe fn fail(job: &Job, step: Step) -> ! {
    // SAFETY: this thread's errno; `_exit` ends the child without running anything of the
    // agent's.
    unsafe {
        job.failed_errno
            .store(*libc::__errno_location(), Ordering::Release);
        job.failed_step.store(step as i32, Ordering::Release);
        libc::_exit(127)
    }
}

/// Tries each candidate as `execvp` does: a missing or inaccessible one is skipped (EACCES
/// is remembered, as it explains a failure better than the last ENOENT), any other error
/// ends the search, and a file without `#!` runs under `/bin/sh`. Returns only on failure,
/// with `errno` set.
///
/// # Safety
/// Only from [`child`].
unsafe fn exec_first_found(job: &Job) {
    let mut denied = false;
    let script_argv = job.script_argv;
    for &candidate in job.candidates.iter().take_while(|c| !c.is_null()) {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays, kept alive by `start`.
        unsafe {
            libc::execve(candidate, job.argv.as_ptr(), job.envp.as_ptr());
            match *libc::__errno_location() {
                libc::ENOEXEC => {
                    // The slot after `/bin/sh` is this child's own; nothing else reads it.
                    *script_argv.add(1) = candidate;
                    libc::execve(
                        SCRIPT_SHELL.as_ptr(),
                        script_argv.cast_const(),
                        job.envp.as_ptr(),
                    );
                    return;
                }
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG => {}
                _ => return,
            }
        }
    }
    if denied {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = libc::EACCES };
    }
}

/// Marks the child as the OOM killer's first choice, so a command that exhausts the
/// sandbox's memory (a leak, a fork bomb) never takes the agent — PID 1, whose death ends the
/// whole sandbox — with it. Raising the score needs no privilege, and every process the
/// command starts inherits it. Best effort: without /proc it is skipped.
///
/// # Safety
/// Only from [`child`].
unsafe fn first_to_go_under_oom() {
    const PATH: &std::ffi::CStr = c"/proc/self/oom_score_adj";
    const MOST_EXPENDABLE: &[u8] = b"1000";
    // SAFETY: PATH is NUL-terminated; the descriptor is closed before returning. Raw system
    // calls: glibc's `open`, `write` and `close` are cancellation points, which touch the
    // calling thread's state.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            PATH.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            let bytes = MOST_EXPENDABLE;
            libc::syscall(libc::SYS_write, fd, bytes.as_ptr(), bytes.len());
            libc::syscall(libc::SYS_close, fd);
        }
    }
}

/// A started command's process: a child of the agent until it is reaped.
#[derive(Debug)]
pub struct ChildProcess {
    pid: u32,
    status: Option<ExitStatus>,
}

impl ChildProcess {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Its exit status, reaping it, if it has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = waitpid(self.pid, libc::WNOHANG)?;
        }
        Ok(self.status)
    }

    /// Waits (on a blocking thread) for it to exit, and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid;
        let status = tokio::task::spawn_blocking(move || waitpid(pid, 0))
            .await
            .map_err(io::Error::other)??
            .ok_or_else(|| io::Error::other("waitpid returned without a status"))?;
        self.status = Some(status);
        Ok(status)
    }

    fn wait_blocking(&mut self) -> io::Result<Option<ExitStatus>> {
        self.status = waitpid(self.pid, 0)?;
        Ok(self.status)
    }
}

impl Drop for ChildProcess {
    /// A process nobody waited for is reaped by a thread of its own, not left a zombie.
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            let pid = self.pid;
            let _ = std::thread::Builder::new()
                .name("reap".into())
                .spawn(move || waitpid(pid, 0));
        }
    }
}

/// `waitpid(pid, flags)`: the status once `pid` has exited, `None` while it runs (WNOHANG).
fn waitpid(pid: u32, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: a plain system call on our own child.
        match unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) } {
            0 => return Ok(None),
            reaped if reaped > 0 => return Ok(Some(ExitStatus::from_raw(status))),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Runs `program args…` with `env`, stdin at EOF, and returns (stdout, exit status).
    async fn run(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&str>,
    ) -> io::Result<(String, ExitStatus)> {
        run_as(program, args, env, cwd, None).await
    }

    /// [`run`] as `user` (`(uid, gid)`).
    async fn run_as(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&str>,
        user: Option<(u32, u32)>,
    ) -> io::Result<(String, ExitStatus)> {
        let (mut reader, writer) = std::io::pipe()?;
        let launch = Launch {
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            cwd: cwd.map(OsString::from),
            user,
            stdio: [
                std::fs::File::open("/dev/null")?.into(),
                OwnedFd::from(writer.try_clone()?),
                OwnedFd::from(writer),
            ],
            controlling_terminal: false,
        };
        let mut child = start(launch)?;
        let mut out = String::new();
        reader.read_to_string(&mut out)?;
        Ok((out, child.wait().await?))
    }

    #[tokio::test]
    async fn the_command_gets_its_arguments_environment_directory_and_a_clean_start() {
        // The masks are read by the process the shell becomes (`exec`): the shell blocks
        // every signal for a moment around each fork, and a child reading the shell's
        // status could see that moment.
        let script = r#"echo "$0|$1|$FOO"; pwd; cat /proc/self/oom_score_adj
            set -- $(cat /proc/$$/stat); echo "session $6 of $$"
            exec grep -E '^Sig(Blk|Ign)' /proc/self/status"#;
        let (out, status) = run(
            "/bin/sh",
            &["-c", script, "first"],
            &[("FOO", "bar"), ("PATH", "/usr/bin:/bin")],
            Some("/tmp"),
        )
        .await
        .unwrap();
        assert!(status.success(), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "first||bar", "{out}");
        assert_eq!(lines[1], "/tmp");
        assert_eq!(lines[2], "1000", "first to go under OOM");
        let (session, leader) = lines[3]
            .strip_prefix("session ")
            .and_then(|rest| rest.split_once(" of "))
            .unwrap();
        assert_eq!(session, leader, "a session of its own: {out}");
        assert_eq!(lines[4].split_whitespace().nth(1), Some("0000000000000000"));
        let ignored = u64::from_str_radix(lines[5].split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE at its default"
        );
    }

    #[tokio::test]
    async fn names_are_looked_up_in_the_commands_path_as_execvp_does() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("no-shebang");
        std::fs::write(&script, "echo ran under sh\nexit 7\n").unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&script, mode).unwrap();
        let path = format!("/nonexistent:{}:/bin", dir.path().display());

        let (out, status) = run("sh", &["-c", "echo found"], &[("PATH", &path)], None)
            .await
            .unwrap();
        assert_eq!((out.as_str(), status.code()), ("found\n", Some(0)));
        let (out, status) = run("no-shebang", &[], &[("PATH", &path)], None)
            .await
            .unwrap();
        assert_eq!((out.as_str(), status.code()), ("ran under sh\n", Some(7)));
        let missing = run("no-such-program", &[], &[("PATH", &path)], None)
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
    }

    #[tokio::test]
    async fn a_failed_step_is_named_and_signals_are_reported() {
        let error = run("/bin/sh", &["-c", "true"], &[], Some("/nonexistent"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(
            error.to_string().contains("enter the working directory"),
            "{error}"
        );
        let (_, status) = run("/bin/sh", &["-c", "kill -TERM $$"], &[], None)
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[tokio::test]
    async fn a_command_runs_as_its_user_without_the_agents_groups_and_the_agent_stays_dumpable() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: switching users needs root");
            return;
        }
        // SAFETY: plain prctl calls on this process.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
        let (out, status) = run_as(
            "/bin/sh",
            &["-c", "id -u; id -g; id -G"],
            &[("PATH", "/usr/bin:/bin")],
            None,
            Some((65534, 65533)),
        )
        .await
        .unwrap();
        assert!(status.success(), "{out}");
        assert_eq!(out, "65534\n65533\n65533\n");
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }, dumpable);
    }
}
