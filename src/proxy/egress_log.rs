//! The egress log: one JSON line per decision the proxy made for a sandbox, in
//! `<log dir>/<sandbox id>.jsonl`, read by `GET …/boxes/{name}/egress-log` and
//! `langsmith sandbox egress-log`.
//!
//! Lines are written by one thread of their own (file writes never run on an async worker),
//! fed through a channel, so a burst of connections never waits for the disk. A read first
//! waits for the writer to catch up with what was recorded before it, so a decision the
//! sandbox has seen (a refusal is recorded before its `403` is sent) is in the log read
//! after it. Each file is
//! bounded: past 8 MiB it becomes `<id>.jsonl.1` (replacing the previous one) and
//! a new file starts; readers then start again from the beginning of the new file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

pub use crate::api::egress::{Decision, EgressEntry};

/// Size at which a sandbox's log is rotated.
const ROTATE_BYTES: u64 = 8 << 20;
/// The most a single read returns.
const READ_LIMIT: u64 = 1 << 20;
/// The longest a read waits for the writer to catch up.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

enum Job {
    Append(String, EgressEntry),
    Forget(String),
    /// Answered once every job sent before it is done.
    Barrier(mpsc::Sender<()>),
}

/// The writer's handle; cloning shares the one thread.
#[derive(Clone)]
pub struct EgressLog {
    dir: PathBuf,
    jobs: mpsc::Sender<Job>,
}

impl EgressLog {
    /// Start the writer for logs under `dir` (created, 0700).
    pub fn open(dir: &Path) -> std::io::Result<EgressLog> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let writer_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("egress-log".into())
            .spawn(move || {
                for job in rx {
                    let result = match job {
                        Job::Append(id, entry) => append(&writer_dir, &id, &entry),
                        Job::Forget(id) => forget(&writer_dir, &id),
                        Job::Barrier(done) => {
                            let _ = done.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::warn!("egress log: {e}");
                    }
                }
            })?;
        Ok(EgressLog {
            dir: dir.to_path_buf(),
            jobs,
        })
    }

    /// Record `entry` for sandbox `id` (written shortly after, in order).
    pub fn record(&self, id: &str, entry: EgressEntry) {
        let _ = self.jobs.send(Job::Append(id.to_string(), entry));
    }

    /// Remove a deleted sandbox's log.
    pub fn forget(&self, id: &str) {
        let _ = self.jobs.send(Job::Forget(id.to_string()));
    }

    /// Waits until the writer has done every job sent before this call: at once if the
    /// writer is gone (nothing will be written any more), and for at most [`CATCH_UP`] if
    /// its disk hangs, so a reader then gets what is there.
    fn catch_up(&self) {
        let (done, caught_up) = mpsc::channel();
        if self.jobs.send(Job::Barrier(done)).is_ok() {
            let _ = caught_up.recv_timeout(CATCH_UP);
        }
    }

    /// Entries of sandbox `id` from byte `offset` on (at most 1 MiB of them),
    /// and the offset to ask from next. Every entry recorded before this call is written
    /// first. Blocking: call off the async workers.
    pub fn read(&self, id: &str, offset: u64) -> std::io::Result<(Vec<EgressEntry>, u64)> {
        self.catch_up();
        let path = log_path(&self.dir, id);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        // Past the end: the file was rotated since; start over.
        let start = if offset > len { 0 } else { offset };
        // An offset from before a rotation can land inside a line of the new file: then the
        // entries start after the next newline.
        let mut aligned = start == 0;
        if !aligned {
            file.seek(SeekFrom::Start(start - 1))?;
            let mut before = [0u8; 1];
            file.read_exact(&mut before)?;
            aligned = before[0] == b'\n';
        }
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.take(READ_LIMIT).read_to_end(&mut bytes)?;
        // Only whole lines: a line being written is read next time.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let first = if aligned {
            0
        } else {
            bytes[..whole]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(whole, |i| i + 1)
        };
        let entries = bytes[first..whole]
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        Ok((entries, start + whole as u64))
    }
}

fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.jsonl"))
}

fn append(dir: &Path, id: &str, entry: &EgressEntry) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = log_path(dir, id);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= ROTATE_BYTES) {
        std::fs::rename(&path, dir.join(format!("{id}.jsonl.1")))?;
    }
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)?
        .write_all(line.as_bytes())
}

fn forget(dir: &Path, id: &str) -> std::io::Result<()> {
    for path in [log_path(dir, id), dir.join(format!("{id}.jsonl.1"))] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed time, so entries compare equal.
    fn entry(host: &str) -> EgressEntry {
        let mut e =
            crate::proxy::connection::entry("sb", host, 443, Decision::Denied, "not in allow_list");
        e.time = "2026-01-01T00:00:00Z".into();
        e
    }

    /// Each read comes right after the records it expects: a read waits for the writer.
    #[test]
    fn entries_are_read_from_an_offset_and_forgotten_with_their_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let log = EgressLog::open(&dir.path().join("egress")).unwrap();
        log.record("a", entry("one.test"));
        log.record("a", entry("two.test"));
        let (entries, next) = log.read("a", 0).unwrap();
        assert_eq!(entries, vec![entry("one.test"), entry("two.test")]);
        log.record("a", entry("three.test"));
        let (entries, _) = log.read("a", next).unwrap();
        assert_eq!(entries, vec![entry("three.test")]);
        assert_eq!(log.read("b", 0).unwrap(), (Vec::new(), 0));
        log.forget("a");
        assert_eq!(log.read("a", 0).unwrap(), (Vec::new(), 0));
    }

    /// Many more records than the writer does in the time a read takes to start: without
    /// the read waiting for it, most would be missing.
    #[test]
    fn a_read_sees_every_entry_recorded_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = EgressLog::open(&dir.path().join("egress")).unwrap();
        let hosts: Vec<String> = (0..2000).map(|i| format!("h{i}.test")).collect();
        for host in &hosts {
            log.record("many", entry(host));
        }
        let (entries, next) = log.read("many", 0).unwrap();
        assert!(next < READ_LIMIT, "the test must fit one read: {next}");
        let read: Vec<&str> = entries.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(read, hosts.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn an_offset_inside_a_line_starts_at_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let egress = dir.path().join("egress");
        let log = EgressLog::open(&egress).unwrap();
        let lines: String = ["one.test", "two.test"]
            .iter()
            .map(|h| serde_json::to_string(&entry(h)).unwrap() + "\n")
            .collect();
        std::fs::write(log_path(&egress, "c"), &lines).unwrap();
        // As after a rotation: the offset of an older, longer file, inside the first line.
        let (entries, next) = log.read("c", 5).unwrap();
        assert_eq!(entries, vec![entry("two.test")]);
        assert_eq!(next, lines.len() as u64);
        let first_end = lines.find('\n').unwrap() as u64 + 1;
        assert_eq!(log.read("c", first_end).unwrap().0, vec![entry("two.test")]);
    }
}
