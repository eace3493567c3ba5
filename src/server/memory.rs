//! Memory a burst of work freed goes back to the system. glibc's allocator keeps the pages of
//! freed allocations in its arenas until asked to trim them: after a thousand exec streams at
//! once the server stayed at four times its idle size, varying from run to run but never
//! coming back down. So the server asks every few seconds, on a blocking thread (a trim
//! walks the arenas' free lists).

use std::time::Duration;

use tokio::task::JoinHandle;

/// How often freed memory is handed back.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Hand freed memory back every [`TRIM_EVERY`] until the task is aborted.
pub fn spawn_trimmer() -> JoinHandle<()> {
    tokio::spawn(async {
        let mut interval = tokio::time::interval(TRIM_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    })
}
