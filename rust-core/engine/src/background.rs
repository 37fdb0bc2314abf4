//! One low-priority thread for work nobody waits for (compiling the optimised tier of
//! modules already serving their baseline code), so that it takes at most one core, and
//! only the time serving leaves over.

use std::sync::mpsc::{sync_channel, SyncSender};

/// A job for the background thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// How many jobs may wait; more are refused (the caller keeps what it has).
const QUEUE: usize = 256;

/// Niceness of the background thread: below serving, above nothing else.
const NICENESS: i32 = 10;

/// The background thread; it ends once this is dropped and its queue is done.
pub struct Background {
    jobs: Option<SyncSender<Job>>,
}

impl Background {
    pub fn start(name: &str) -> Self {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    job();
                }
            });
        Background {
            jobs: spawned.ok().map(|_| tx),
        }
    }

    /// Queues `job`; false when the queue is full or the thread could not start.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|tx| tx.try_send(job).is_ok())
    }
}

/// Lowers the calling thread's CPU priority (on Linux, niceness is per thread).
fn lower_priority() {
    // SAFETY: nice only changes the scheduling priority of the calling thread.
    let _ = unsafe { libc::nice(NICENESS) };
}
