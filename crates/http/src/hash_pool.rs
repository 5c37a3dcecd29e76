//! A small pool of low-priority threads for argon2.
//!
//! Each hash takes about 19 MiB and tens of milliseconds of one core. The pool runs at
//! most one hash per thread (one thread per core by default), and its threads run at
//! the lowest scheduling priority (niceness 19, `SCHED_BATCH` on Linux), so when logins
//! saturate the machine the actix workers still get the CPU for every other request.
//! Each thread keeps its argon2 memory between hashes.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use actix_web::http::StatusCode;
use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Hashes waiting for a thread; beyond this, requests get 503 instead of queueing.
pub const MAX_QUEUED_HASHES: usize = 256;

/// The hashing threads and their queue.
#[derive(Debug)]
pub struct HashPool {
    sender: SyncSender<Job>,
    threads: usize,
}

impl HashPool {
    /// Starts `threads` hashing threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::sync_channel::<Job>(MAX_QUEUED_HASHES);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            thread::Builder::new().name(format!("argon2-{index}")).spawn(move || run_worker(&receiver))?;
        }
        Ok(Self { sender, threads })
    }

    /// Returns the number of hashing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a hashing thread, in the caller's tracing span, and returns its
    /// result. A full queue is 503.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _entered = span.enter();
            let _ = reply.send(work());
        });
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(queued = MAX_QUEUED_HASHES, "password hashing queue full");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "Too many sign-ins in progress; try again shortly.",
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(ApiError::internal("hashing threads stopped")),
        }
        result.await.map_err(|_| ApiError::internal("a hashing thread dropped its job"))
    }
}

fn run_worker(receiver: &Mutex<Receiver<Job>>) {
    let lowered = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(error) = lowered {
        tracing::warn!(?error, "cannot lower the priority of a hashing thread; it runs at normal priority");
    }
    finetune_auth::password::keep_memory_on_this_thread();
    loop {
        let job = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            // The pool was dropped: no more work will come.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn pool_returns_results() {
        let pool = HashPool::new(2).unwrap_or_else(|e| unreachable!("{e}"));
        let results = futures_util::future::join_all((0..8).map(|n| pool.run(move || n * 2))).await;
        let values: Vec<i32> = results.into_iter().map(|r| r.unwrap_or(-1)).collect();
        assert_eq!(values, vec![0, 2, 4, 6, 8, 10, 12, 14]);
    }
}
