//! Threads kept for work off the request's thread: a wasi:http component's request body,
//! read from the client while the guest runs. Starting and ending a thread per request
//! costs more than the smallest guests do: a stack mapped and unmapped (a TLB shootdown on
//! every core). A thread that finishes a job waits for the next one, and ends after
//! [`IDLE_FOR`] without one.
//!
//! How many exist is bounded by how many requests run at once (the process's guest slots):
//! a new thread is started only when none is idle.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::locks::lock;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread waits for a job before it ends.
const IDLE_FOR: Duration = Duration::from_secs(30);

/// The idle threads, each waiting on its own channel, by number.
static IDLE: std::sync::Mutex<Vec<(u64, mpsc::Sender<Job>)>> = std::sync::Mutex::new(Vec::new());

/// Numbers the threads, so that one that ends can leave the idle list.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Runs `f` on an idle kept thread, or a new one. The result arrives on the receiver,
/// `Err` if `f` panicked (the thread survives that).
pub fn run<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> std::io::Result<mpsc::Receiver<std::thread::Result<R>>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let mut job: Job = Box::new(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    loop {
        let Some((_, idle)) = lock(&IDLE).pop() else {
            break;
        };
        // A thread that timed out between being listed and now hands the job back.
        match idle.send(job) {
            Ok(()) => return Ok(rx),
            Err(mpsc::SendError(back)) => job = back,
        }
    }
    let (jobs_tx, jobs) = mpsc::channel::<Job>();
    let _ = jobs_tx.send(job);
    let id = STARTED.fetch_add(1, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("wagi-kept".into())
        .spawn(move || serve(id, &jobs, &jobs_tx))?;
    Ok(rx)
}

/// A kept thread's life: jobs until it has been idle for [`IDLE_FOR`].
fn serve(id: u64, jobs: &mpsc::Receiver<Job>, me: &mpsc::Sender<Job>) {
    loop {
        match jobs.recv_timeout(IDLE_FOR) {
            Ok(job) => {
                job();
                lock(&IDLE).push((id, me.clone()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Still listed: nobody can send to it any more once it leaves. Not listed:
                // a request took it and its job is on the way.
                let mut idle = lock(&IDLE);
                if let Some(at) = idle.iter().position(|(other, _)| *other == id) {
                    idle.swap_remove(at);
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_off_the_calling_thread() {
        let here = std::thread::current().id();
        for _ in 0..3 {
            let there = run(|| std::thread::current().id()).unwrap();
            assert_ne!(there.recv().unwrap().unwrap(), here);
        }
    }

    #[test]
    fn a_panicking_job_reports_err() {
        let rx = run(|| -> u32 { panic!("on purpose") }).unwrap();
        assert!(rx.recv().unwrap().is_err());
        assert_eq!(run(|| 7).unwrap().recv().unwrap().unwrap(), 7);
    }
}
