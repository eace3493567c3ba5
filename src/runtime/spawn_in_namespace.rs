//! Running a program inside another mount namespace without copying the server.
//!
//! `runc run` of a sandbox must start in that sandbox's view of the host (see `runc_view`),
//! with the agent's socket as its descriptor 3. Entering the namespace between `fork` and
//! `exec` needs a real `fork`: the kernel copies the server's page tables for a child that
//! only execs runc, and the server then takes a fault on every page it writes until the
//! copy is gone — in a burst of creates, much of the server's share of the machine.
//!
//! Here a thread of its own enters the namespace instead ([`namespace_thread`]) and starts
//! the program with `posix_spawn`,
//! which glibc does with `CLONE_VM | CLONE_VFORK`: nothing is copied, and the child inherits
//! the thread's namespace. The thread waits for the program and ends with it, so no other
//! work ever runs in that namespace.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::spawn::{
    PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn, posix_spawnp,
};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};

use super::namespace_thread::{self, EnterError, Namespace};
use super::sealed_binary::SealedBinary;

/// A program to run: `executable`, or else `argv[0]` looked up in `PATH` like
/// `std::process::Command` does; it gets this process's environment.
pub struct Program {
    pub argv: Vec<OsString>,
    /// A sealed copy of the binary to execute instead of looking `argv[0]` up; held until
    /// the program has started, as its path names one of this process's descriptors.
    pub executable: Option<SealedBinary>,
    /// The mount namespace to run it in.
    pub namespace: OwnedFd,
    /// Descriptors 0, 1, 2, 3… of the program, in order.
    pub descriptors: Vec<OwnedFd>,
}

/// Why the program did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("an argument contains a NUL byte")]
    Nul,
    #[error("no program was named")]
    NoProgram,
    #[error("{doing}: {errno}")]
    Sys { doing: &'static str, errno: Errno },
    #[error("no thread to start it: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the thread that ran it panicked")]
    Panicked,
}

fn sys(doing: &'static str) -> impl FnOnce(Errno) -> SpawnError {
    move |errno| SpawnError::Sys { doing, errno }
}

/// Runs `program` to its end on a thread of its own, in its namespace; its exit status.
pub async fn run(program: Program) -> Result<std::process::ExitStatus, SpawnError> {
    let Program {
        argv,
        executable,
        namespace,
        descriptors,
    } = program;
    let pending = namespace_thread::spawn("spawn-in-namespace", Namespace::Mount, namespace, {
        move || run_here(argv, executable, descriptors)
    });
    match pending.map_err(entering)?.wait().await {
        Ok(ran) => ran,
        Err(error) => Err(entering(error)),
    }
}

fn entering(error: EnterError) -> SpawnError {
    match error {
        EnterError::Thread(e) => SpawnError::Thread(e),
        EnterError::Unshare(errno) => sys("unshare the thread's filesystem attributes")(errno),
        EnterError::Enter(errno) => sys("enter the mount namespace")(errno),
        EnterError::Panicked => SpawnError::Panicked,
    }
}

/// [`run`]'s steps, on the thread (in the namespace) that will end with them.
fn run_here(
    argv: Vec<OsString>,
    executable: Option<SealedBinary>,
    descriptors: Vec<OwnedFd>,
) -> Result<std::process::ExitStatus, SpawnError> {
    let cstring = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| SpawnError::Nul);
    let path = executable
        .as_ref()
        .map(|sealed| cstring(&sealed.exec_path().into_os_string()))
        .transpose()?;
    let argv = argv.iter().map(cstring).collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            cstring(&pair)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut actions = PosixSpawnFileActions::init().map_err(sys("prepare the spawn"))?;
    for (target, fd) in descriptors.iter().enumerate() {
        // No source is a number an earlier dup2 overwrote: 0–2 stay this process's stdio,
        // so every descriptor it opens is 3 or more, and 3 is the last one written.
        debug_assert!(fd.as_raw_fd() >= 3.min(descriptors.len() as RawFd));
        // dup2 onto the same number clears close-on-exec too (glibc 2.29 and later).
        actions
            .add_dup2(fd.as_raw_fd(), target as RawFd)
            .map_err(sys("prepare the spawn"))?;
    }
    let mut attr = PosixSpawnAttr::init().map_err(sys("prepare the spawn"))?;
    // What std::process::Command gives a child too: no blocked signal, and SIGPIPE (which
    // Rust programs ignore) back to its default.
    let mut sigpipe = SigSet::empty();
    sigpipe.add(Signal::SIGPIPE);
    attr.set_sigdefault(&sigpipe)
        .map_err(sys("prepare the spawn"))?;
    attr.set_sigmask(&SigSet::empty())
        .map_err(sys("prepare the spawn"))?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )
    .map_err(sys("prepare the spawn"))?;
    let name = argv.first().ok_or(SpawnError::NoProgram)?;
    let pid = match &path {
        Some(path) => posix_spawn(path.as_c_str(), &actions, &attr, &argv, &env),
        None => posix_spawnp(name, &actions, &attr, &argv, &env),
    }
    .map_err(sys("start it"))?;
    // Ours until it has started: the child holds its own copies now.
    drop(descriptors);
    drop(executable);
    loop {
        use std::os::unix::process::ExitStatusExt;
        // As `wait` encodes them: the code in the second byte, or the signal in the first.
        let raw = match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => (code & 0xff) << 8,
            Ok(WaitStatus::Signaled(_, signal, core)) => signal as i32 | i32::from(core) << 7,
            // Stopped or traced: not its end yet.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(sys("wait for it")(errno)),
        };
        return Ok(std::process::ExitStatus::from_raw(raw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::Path;

    /// This process's own mount namespace: entering it changes nothing, so the tests show
    /// the descriptors, the arguments and the exit status. Entering one needs root, as the
    /// server has: `None` (the test is skipped) without it.
    fn own_namespace() -> Option<OwnedFd> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: entering a mount namespace needs root");
            return None;
        }
        Some(std::fs::File::open("/proc/self/ns/mnt").unwrap().into())
    }

    #[tokio::test]
    async fn the_program_gets_its_descriptors_in_order_and_its_exit_status_comes_back() {
        let Some(namespace) = own_namespace() else {
            return;
        };
        let (mut out, out_w) = std::io::pipe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let third = dir.path().join("third");
        std::fs::write(&third, "from descriptor 3").unwrap();
        let program = Program {
            argv: ["sh", "-c", "echo \"$0\"; cat <&3; exit 7", "an argument"]
                .map(OsString::from)
                .to_vec(),
            executable: None,
            namespace,
            descriptors: vec![
                std::fs::File::open("/dev/null").unwrap().into(),
                out_w.into(),
                std::fs::File::open("/dev/null").unwrap().into(),
                std::fs::File::open(&third).unwrap().into(),
            ],
        };
        let status = run(program).await.unwrap();
        assert_eq!(status.code(), Some(7));
        let mut printed = String::new();
        out.read_to_string(&mut printed).unwrap();
        assert_eq!(printed, "an argument\nfrom descriptor 3");
    }

    #[tokio::test]
    async fn a_program_that_does_not_exist_is_an_error_and_a_signal_is_reported() {
        let (Some(namespace), Some(again)) = (own_namespace(), own_namespace()) else {
            return;
        };
        let missing = Program {
            argv: vec!["no-such-program-anywhere".into()],
            executable: None,
            namespace,
            descriptors: vec![],
        };
        let error = run(missing).await.unwrap_err().to_string();
        assert!(error.contains("start it"), "{error}");
        let killed = Program {
            argv: ["sh", "-c", "kill -KILL $$"].map(OsString::from).to_vec(),
            executable: Some(SealedBinary::copy_of(Path::new("/bin/sh")).unwrap()),
            namespace: again,
            descriptors: vec![],
        };
        let status = run(killed).await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
