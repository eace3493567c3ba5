//! Places the agent — this very executable — under `root/agent/` so every sandbox can run it
//! from a read-only bind mount at `/.langsmith/bin`, whatever libc the image has (or none).
//!
//! A statically linked executable is used as is. A dynamically linked one gets its ELF
//! interpreter and every shared library `ldd` reports copied into `agent/lib/`, and is
//! started through that interpreter with `--library-path`, so nothing is loaded from the image.

use std::fs;
use std::path::{Path, PathBuf};

use super::RuntimeError;

/// Where `root/agent` appears inside every sandbox.
pub const AGENT_MOUNT: &str = "/.langsmith/bin";
/// File name of the agent executable inside `root/agent`.
const AGENT_NAME: &str = "langsmith";

/// Why the agent files could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum AgentFilesError {
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a supported executable: {what}", exe.display())]
    Unsupported { exe: PathBuf, what: &'static str },
    #[error("{} has no usable file name", .0.display())]
    NoFileName(PathBuf),
    #[error("run ldd (install libc-bin): {0}")]
    NoLdd(#[source] std::io::Error),
    #[error("ldd {} failed: {stderr}", exe.display())]
    Ldd { exe: PathBuf, stderr: String },
    #[error("shared library {0} not found")]
    MissingLibrary(String),
}

impl AgentFilesError {
    fn io(doing: String) -> impl FnOnce(std::io::Error) -> Self {
        move |source| AgentFilesError::Io { doing, source }
    }
}

/// The prepared agent: the argument vector that starts it inside a sandbox.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub args: Vec<String>,
}

/// Installs `exe` (and, if it is dynamically linked, its loader and libraries) into `dir`.
pub fn install(exe: &Path, dir: &Path) -> Result<AgentEntry, RuntimeError> {
    let fail = |reason: AgentFilesError| RuntimeError::AgentFiles {
        dir: dir.to_path_buf(),
        reason,
    };
    let io = |doing: String| move |e| fail(AgentFilesError::io(doing)(e));
    // Walkable and readable by every sandbox's root (a host id of its range), whatever the
    // umask: the files are the same public executable for all.
    create_public_dir(dir).map_err(io("create directory".into()))?;
    place(exe, &dir.join(AGENT_NAME), true).map_err(io(exe.display().to_string()))?;

    let agent = format!("{AGENT_MOUNT}/{AGENT_NAME}");
    let agent_args = [
        agent.clone(),
        "agent".to_string(),
        // The listening socket the runtime binds on the host (`runc run --preserve-fds 1`).
        "--listen-fd".to_string(),
        "3".to_string(),
    ];
    let Some(interpreter) = elf_interpreter(exe).map_err(fail)? else {
        return Ok(AgentEntry {
            args: agent_args.to_vec(),
        });
    };

    let lib_dir = dir.join("lib");
    create_public_dir(&lib_dir).map_err(io(format!("create {}", lib_dir.display())))?;
    let interpreter_name = file_name(&interpreter).map_err(fail)?;
    place(&interpreter, &lib_dir.join(&interpreter_name), false)
        .map_err(io(format!("copy interpreter {}", interpreter.display())))?;
    for (soname, path) in shared_libraries(exe).map_err(fail)? {
        place(&path, &lib_dir.join(&soname), false)
            .map_err(io(format!("copy {}", path.display())))?;
    }

    let mut args = vec![
        format!("{AGENT_MOUNT}/lib/{interpreter_name}"),
        "--library-path".to_string(),
        format!("{AGENT_MOUNT}/lib"),
    ];
    args.extend(agent_args);
    Ok(AgentEntry { args })
}

fn create_public_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
}

/// Puts a copy of `source` at `target` atomically (temp name + rename), so a sandbox starting
/// meanwhile never sees a half-written file. A hard link is tried first when `link` is set.
fn place(source: &Path, target: &Path, link: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let temp = target.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    // A link shares the source's mode: it must let every sandbox's root (a host id that is
    // "other" to the file) read and run it, or a copy is made instead.
    let public = |path: &Path| fs::metadata(path).is_ok_and(|m| m.mode() & 0o005 == 0o005);
    if !(link && public(source) && fs::hard_link(source, &temp).is_ok()) {
        fs::copy(source, &temp)?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o755))?;
    }
    fs::rename(&temp, target)?;
    // rename() between two links of the same inode succeeds without removing the source.
    let _ = fs::remove_file(&temp);
    Ok(())
}

fn file_name(path: &Path) -> Result<String, AgentFilesError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| AgentFilesError::NoFileName(path.to_path_buf()))
}

/// The ELF interpreter (`PT_INTERP`) of a 64-bit little-endian executable, or `None` when it
/// is statically linked.
pub fn elf_interpreter(exe: &Path) -> Result<Option<PathBuf>, AgentFilesError> {
    let data = fs::read(exe).map_err(AgentFilesError::io(format!("read {}", exe.display())))?;
    let bad = |what: &'static str| AgentFilesError::Unsupported {
        exe: exe.to_path_buf(),
        what,
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err(bad("no ELF header"));
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(bad("only 64-bit little-endian ELF is supported"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    let u64_at = |at: usize| -> Option<usize> {
        let bytes = data.get(at..at + 8)?;
        usize::try_from(u64::from_le_bytes(bytes.try_into().ok()?)).ok()
    };
    const PT_INTERP: u32 = 3;
    let table = u64_at(0x20).ok_or_else(|| bad("truncated header"))?;
    let (entry_size, count) = (u16_at(0x36), u16_at(0x38));
    for index in 0..count {
        let header = table + index * entry_size;
        let kind = data
            .get(header..header + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated program headers"))?;
        if kind != PT_INTERP {
            continue;
        }
        let offset = u64_at(header + 8).ok_or_else(|| bad("truncated PT_INTERP"))?;
        let size = u64_at(header + 32).ok_or_else(|| bad("truncated PT_INTERP"))?;
        let raw = data
            .get(offset..offset + size)
            .ok_or_else(|| bad("PT_INTERP out of range"))?;
        let text = raw.split(|&b| b == 0).next().unwrap_or_default();
        let path = std::str::from_utf8(text).map_err(|_| bad("PT_INTERP is not UTF-8"))?;
        return Ok(Some(PathBuf::from(path)));
    }
    Ok(None)
}

/// `(soname, resolved path)` of every shared library `ldd` reports for `exe`.
fn shared_libraries(exe: &Path) -> Result<Vec<(String, PathBuf)>, AgentFilesError> {
    let output = std::process::Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(AgentFilesError::NoLdd)?;
    if !output.status.success() {
        return Err(AgentFilesError::Ldd {
            exe: exe.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    parse_ldd(&String::from_utf8_lossy(&output.stdout))
}

/// Parses `ldd` output. Lines look like `libc.so.6 => /lib/…/libc.so.6 (0x…)`; the vDSO and
/// the interpreter line (no `=>`) are skipped, `=> not found` is an error.
pub fn parse_ldd(text: &str) -> Result<Vec<(String, PathBuf)>, AgentFilesError> {
    let mut libraries = Vec::new();
    for line in text.lines() {
        let Some((soname, rest)) = line.split_once("=>") else {
            continue;
        };
        let soname = soname.trim();
        let path = rest.trim().split(" (").next().unwrap_or_default().trim();
        if path == "not found" {
            return Err(AgentFilesError::MissingLibrary(soname.to_string()));
        }
        if path.starts_with('/') {
            libraries.push((soname.to_string(), PathBuf::from(path)));
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_yields_libraries_by_soname() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
        let libraries = parse_ldd(text).unwrap();
        assert_eq!(
            libraries,
            vec![
                (
                    "libgcc_s.so.1".to_string(),
                    PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1")
                ),
                (
                    "libc.so.6".to_string(),
                    PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")
                ),
            ]
        );
        let missing = parse_ldd("\tlibmissing.so.1 => not found\n").unwrap_err();
        assert!(
            matches!(&missing, AgentFilesError::MissingLibrary(name) if name == "libmissing.so.1"),
            "{missing}"
        );
    }

    #[test]
    fn static_and_dynamic_executables_are_told_apart() {
        // busybox-static has no interpreter; the test harness itself is dynamically linked.
        assert_eq!(elf_interpreter(Path::new("/bin/busybox")).unwrap(), None);
        let harness = std::env::current_exe().unwrap();
        let interpreter = elf_interpreter(&harness).unwrap().expect("dynamic harness");
        assert!(
            interpreter.is_absolute() && interpreter.exists(),
            "{interpreter:?}"
        );
        let not_elf = elf_interpreter(Path::new("/proc/version")).unwrap_err();
        assert!(
            matches!(not_elf, AgentFilesError::Unsupported { .. }),
            "{not_elf}"
        );
    }
}
