//! Where an operation's time went: each phase's duration, logged as one debug line when the
//! operation ends (`LANGSMITH_LOG=debug`, or `LANGSMITH_LOG=langsmith::phases=debug` for
//! these lines alone). A leaf: the server and the runtime time their own steps with it.
//!
//! ```text
//! DEBUG langsmith::phases: create 1f0c…: record 0.4 ms · scratch 0.9 ms · layers 21.3 ms · … · total 74.2 ms
//! ```
//!
//! An operation that ends early (an error, a dropped future) still logs the phases it got
//! through, marked `(unfinished)`, so a slow failure is as visible as a slow success.

use std::fmt::{Display, Write as _};
use std::time::{Duration, Instant};

/// The running timer of one operation.
pub struct Phases {
    /// Whether the line will be logged; when not, nothing is formatted or recorded (an
    /// exec's data-plane request is timed on every call).
    enabled: bool,
    operation: &'static str,
    subject: String,
    started: Instant,
    last: Instant,
    marks: Vec<(&'static str, Duration)>,
    finished: bool,
}

impl Phases {
    /// Starts timing `operation` (e.g. `"create"`) of `subject` (e.g. a sandbox id). When
    /// debug logging of these lines is off this costs one clock read and no allocation.
    pub fn start(operation: &'static str, subject: impl Display) -> Phases {
        let enabled = tracing::enabled!(tracing::Level::DEBUG);
        let now = Instant::now();
        Phases {
            enabled,
            operation,
            subject: if enabled {
                subject.to_string()
            } else {
                String::new()
            },
            started: now,
            last: now,
            marks: Vec::new(),
            finished: false,
        }
    }

    /// Ends the phase named `phase` now; the next one starts here.
    pub fn mark(&mut self, phase: &'static str) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        self.marks.push((phase, now - self.last));
        self.last = now;
    }

    /// Ends the operation: its line is logged as complete.
    pub fn finish(mut self) {
        self.finished = true;
    }

    fn line(&self) -> String {
        let mut line = format!("{} {}:", self.operation, self.subject);
        for (phase, took) in &self.marks {
            let _ = write!(line, " {phase} {} ·", millis(*took));
        }
        let _ = write!(line, " total {}", millis(self.started.elapsed()));
        if !self.finished {
            line.push_str(" (unfinished)");
        }
        line
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if self.enabled {
            tracing::debug!("{}", self.line());
        }
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_each_phase_in_order_and_the_total() {
        let mut phases = Phases::start("create", "abc");
        // Recorded as if debug logging were on (no subscriber is installed in unit tests).
        phases.enabled = true;
        phases.subject = "abc".into();
        phases.mark("mount");
        phases.mark("runc");
        let line = phases.line();
        assert!(line.starts_with("create abc: mount "), "{line}");
        let mount = line.find("mount").unwrap();
        let runc = line.find("runc").unwrap();
        let total = line.find("total").unwrap();
        assert!(mount < runc && runc < total, "{line}");
        assert!(line.ends_with("(unfinished)"), "{line}");
        phases.finished = true;
        assert!(!phases.line().contains("unfinished"));
    }
}
