//! Worker threads, nginx style: each runs a single-threaded runtime, so a connection, its
//! upstream request and its body stay on one thread (no work stealing, no cross-thread
//! wake-ups on the hot path), and the machine's cores are used by running several.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, oneshot};
use tracing::error;

/// The running workers.
pub(super) struct Workers {
    finished: Vec<oneshot::Receiver<()>>,
}

impl Workers {
    /// Waits until every worker thread has finished.
    pub(super) async fn join(self) {
        for finished in self.finished {
            // An error means the thread ended without saying so (it panicked): done too.
            let _ = finished.await;
        }
    }
}

/// Starts `count` worker threads; `make(index, arrival)` builds what worker `index` runs.
pub(super) fn start<F, Fut>(count: usize, mut make: F) -> Workers
where
    F: FnMut(usize, Arrival) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let drained = Arc::new(Drained {
        remaining: AtomicUsize::new(count),
        notify: Notify::new(),
    });
    let mut finished = Vec::with_capacity(count);
    for index in 0..count {
        let work = make(
            index,
            Arrival {
                drained: drained.clone(),
                arrived: false,
            },
        );
        let (done, done_rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("isp-worker-{index}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        runtime.block_on(work);
                        // Dropping the runtime cancels what is left (idle upstream
                        // connections) before the server reports it has stopped.
                        drop(runtime);
                    }
                    Err(e) => error!(error = %e, worker = index, "cannot start a worker runtime"),
                }
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => finished.push(done_rx),
            Err(e) => error!(error = %e, worker = index, "cannot start a worker thread"),
        }
    }
    Workers { finished }
}

/// How many workers are still draining their connections.
struct Drained {
    remaining: AtomicUsize,
    notify: Notify,
}

/// A worker's place in the drain: it arrives once its connections are done (or when it is
/// dropped, so a worker that never ran cannot hold the others).
pub(super) struct Arrival {
    drained: Arc<Drained>,
    arrived: bool,
}

impl Arrival {
    /// Says this worker has drained, then waits until every worker has.
    pub(super) async fn arrive_and_wait(mut self) {
        self.arrive();
        let drained = self.drained.clone();
        loop {
            let notified = drained.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if drained.remaining.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn arrive(&mut self) {
        if !std::mem::replace(&mut self.arrived, true)
            && self.drained.remaining.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.drained.notify.notify_waiters();
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arrive();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn no_worker_leaves_before_all_have_drained() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let workers = start(3, |index, arrival| {
            let log = log.clone();
            let mut released = released.clone();
            async move {
                if index == 0 {
                    // The slow one: drains only when released.
                    let _ = released.wait_for(|r| *r).await;
                }
                log.lock().unwrap().push(format!("drained {index}"));
                arrival.arrive_and_wait().await;
                log.lock().unwrap().push(format!("left {index}"));
            }
        });
        // Workers 1 and 2 have drained and must still be waiting for worker 0.
        while log.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(log.lock().unwrap().iter().all(|e| e.starts_with("drained")));
        release.send(true).unwrap();
        workers.join().await;
        let log = log.lock().unwrap();
        let first_leave = log.iter().position(|e| e.starts_with("left")).unwrap();
        assert_eq!(first_leave, 3, "{log:?}");
        assert_eq!(log.len(), 6);
    }
}
