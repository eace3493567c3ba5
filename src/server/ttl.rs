//! Sandbox deadlines: when an idle `ready` sandbox may be stopped and a `stopped` one
//! deleted. The store keeps each sandbox's next deadline in an indexed column so the reaper
//! reads only what is due; the reaper applies the same rules with what it knows in memory.
//!
//! TTLs are whole minutes; a [`TtlClock`] counts `unit_seconds` per minute (60 in
//! production; the hidden `LANGSMITH_SERVER_TTL_UNIT_SECONDS=1` makes tests' 60 s pass in 1 s).

use chrono::{DateTime, Utc};

use crate::api::{Sandbox, status};

/// Turns TTLs in seconds into wall-clock durations.
#[derive(Debug, Clone, Copy)]
pub struct TtlClock {
    unit_seconds: u64,
}

impl TtlClock {
    pub fn new(unit_seconds: u64) -> TtlClock {
        TtlClock {
            unit_seconds: unit_seconds.max(1),
        }
    }

    /// Seconds counted per minute of a TTL.
    pub fn unit_seconds(&self) -> u64 {
        self.unit_seconds
    }

    /// A TTL in seconds as wall-clock time.
    pub fn scaled(&self, seconds: i64) -> chrono::Duration {
        chrono::Duration::milliseconds(seconds.max(0) * self.unit_seconds as i64 * 1000 / 60)
    }

    /// When a `stopped` sandbox is to be deleted: `stopped_at` plus its
    /// `delete_after_stop_seconds`; `None` if it is never deleted on its own.
    pub fn delete_at(&self, sb: &Sandbox) -> Option<DateTime<Utc>> {
        let after = sb.delete_after_stop_seconds.unwrap_or(0);
        if sb.status != status::STOPPED || after <= 0 {
            return None;
        }
        Some(parse(sb.stopped_at.as_deref()?)? + self.scaled(after))
    }

    /// The earliest moment a `ready` sandbox can be idle for its `idle_ttl_seconds`: its last
    /// recorded change plus the TTL (data-plane activity, known only in memory, can only
    /// push it later); `None` if it never stops on its own.
    pub fn idle_from(&self, sb: &Sandbox) -> Option<DateTime<Utc>> {
        let ttl = sb.idle_ttl_seconds.unwrap_or(0);
        if sb.status != status::READY || ttl <= 0 {
            return None;
        }
        Some(parse(&sb.updated_at)? + self.scaled(ttl))
    }

    /// The sandbox's next deadline, whichever kind applies to its status.
    pub fn due_at(&self, sb: &Sandbox) -> Option<DateTime<Utc>> {
        self.idle_from(sb).or_else(|| self.delete_at(sb))
    }
}

/// An RFC 3339 timestamp as the API writes them.
pub fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(state: &str) -> Sandbox {
        Sandbox {
            status: state.into(),
            idle_ttl_seconds: Some(600),
            delete_after_stop_seconds: Some(60),
            updated_at: "2026-01-01T00:00:00Z".into(),
            stopped_at: Some("2026-01-01T01:00:00Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn each_status_has_its_own_deadline() {
        let clock = TtlClock::new(60);
        let at = |s: &str| parse(s).unwrap();
        assert_eq!(
            clock.due_at(&sandbox(status::READY)),
            Some(at("2026-01-01T00:10:00Z"))
        );
        assert_eq!(
            clock.due_at(&sandbox(status::STOPPED)),
            Some(at("2026-01-01T01:01:00Z"))
        );
        assert_eq!(clock.due_at(&sandbox(status::PROVISIONING)), None);
        let mut forever = sandbox(status::READY);
        forever.idle_ttl_seconds = Some(0);
        assert_eq!(clock.due_at(&forever), None);
    }

    #[test]
    fn a_shorter_unit_shrinks_every_ttl() {
        let clock = TtlClock::new(1);
        assert_eq!(clock.scaled(60), chrono::Duration::seconds(1));
        assert_eq!(
            clock.due_at(&sandbox(status::READY)),
            Some(parse("2026-01-01T00:00:10Z").unwrap())
        );
    }
}
