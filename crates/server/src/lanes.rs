//! Where the SQL stores' transactions run: on tokio's blocking pool (never on the async
//! workers), at most `max` at once (one per pooled connection). A transaction is queued, and
//! each of up to `max` blocking tasks takes queued transactions one after another until none is
//! left. Blocking tasks are started by a "kick" task that runs on the runtime after the tasks
//! already ready (the other connections' requests of the same wake-up), so one thread wake-up
//! serves them all. A blocking task per transaction cost two thread switches per request, more
//! than a SQLite read itself where the runtime and the blocking threads share a core.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

/// A queue of blocking jobs and the blocking tasks draining it.
pub(crate) struct Lanes {
  max: usize,
  state: Mutex<Queue>,
}

struct Queue {
  jobs: VecDeque<Job>,
  /// Blocking tasks spawned and not yet finished.
  drainers: usize,
  /// Drainers running a job (the others are about to take one, or to finish).
  busy: usize,
  /// A kick task is on its way.
  kicking: bool,
}

impl Queue {
  /// How many more drainers the queued jobs need.
  fn wanted(&self, max: usize) -> usize {
    let free = self.drainers - self.busy;
    (self.jobs.len().saturating_sub(free)).min(max - self.drainers)
  }
}

impl Lanes {
  /// Lanes that run at most `max` jobs at once.
  pub fn new(max: usize) -> Arc<Lanes> {
    Arc::new(Lanes {
      max: max.max(1),
      state: Mutex::new(Queue {
        jobs: VecDeque::new(),
        drainers: 0,
        busy: 0,
        kicking: false,
      }),
    })
  }

  fn lock(&self) -> MutexGuard<'_, Queue> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Runs `job` on a blocking thread once a lane is free and returns what it returned; `None`
  /// when it never ran (the runtime is shutting down). A panic in `job` resumes in the caller,
  /// as it would had the job run inline. A job whose caller stops waiting before a lane is free
  /// never runs (a request its client abandoned in the queue changes nothing); once begun, it
  /// holds its lane until it ends.
  pub async fn run<T: Send + 'static>(
    self: &Arc<Self>,
    job: impl FnOnce() -> T + Send + 'static,
  ) -> Option<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    self.push(Box::new(move || {
      if !done.is_closed() {
        let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
      }
    }));
    match result.await {
      Ok(Ok(value)) => Some(value),
      Ok(Err(panic)) => std::panic::resume_unwind(panic),
      Err(_) => None,
    }
  }

  fn push(self: &Arc<Self>, job: Job) {
    let mut queue = self.lock();
    queue.jobs.push_back(job);
    if queue.kicking || queue.wanted(self.max) == 0 {
      // A drainer (or the kick on its way) takes it: no thread is woken.
      return;
    }
    queue.kicking = true;
    drop(queue);
    let runtime = tokio::runtime::Handle::current();
    let kick = Kick(self.clone(), runtime.clone());
    // `Kick` kicks when dropped: once the runtime gets to this task, or at once if it never
    // will (shutdown drops the task unrun).
    drop(runtime.spawn(async move { drop(kick) }));
  }
}

/// Starts the drainers the queued jobs need (see the module's documentation), on its runtime.
struct Kick(Arc<Lanes>, tokio::runtime::Handle);

impl Drop for Kick {
  fn drop(&mut self) {
    let lanes = &self.0;
    let wanted = {
      let mut queue = lanes.lock();
      queue.kicking = false;
      let wanted = queue.wanted(lanes.max);
      queue.drainers += wanted;
      wanted
    };
    for _ in 0..wanted {
      let drainer = Drainer {
        lanes: lanes.clone(),
        finished: false,
      };
      // At shutdown tokio drops the task unrun; `Drainer`'s drop then accounts for it.
      drop(self.1.spawn_blocking(move || drainer.drain()));
    }
  }
}

/// One blocking task's hold on the lanes.
struct Drainer {
  lanes: Arc<Lanes>,
  finished: bool,
}

impl Drainer {
  fn drain(mut self) {
    let mut ran = false;
    loop {
      let job = {
        let mut queue = self.lanes.lock();
        if ran {
          queue.busy -= 1;
        }
        match queue.jobs.pop_front() {
          Some(job) => {
            queue.busy += 1;
            job
          }
          None => {
            // Under the lock: a job pushed after this sees one drainer fewer and kicks.
            queue.drainers -= 1;
            self.finished = true;
            return;
          }
        }
      };
      ran = true;
      // Jobs catch their own panics (`run`), so `busy` is always given back.
      job();
    }
  }
}

impl Drop for Drainer {
  fn drop(&mut self) {
    if self.finished {
      return;
    }
    // Never ran (the runtime is shutting down): the last such drainer drops what is queued, so
    // that its callers hear `None` instead of waiting for ever.
    let stranded = {
      let mut queue = self.lanes.lock();
      queue.drainers -= 1;
      if queue.drainers == 0 {
        std::mem::take(&mut queue.jobs)
      } else {
        VecDeque::new()
      }
    };
    drop(stranded);
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::time::Duration;

  /// The queue's length and drainers once every drainer has ended (a drainer ends just after
  /// its last job has answered), or as they are after 5 s.
  async fn settled(lanes: &Lanes) -> (usize, usize) {
    let now = || {
      let queue = lanes.lock();
      (queue.jobs.len(), queue.drainers)
    };
    for _ in 0..500 {
      if now().1 == 0 {
        break;
      }
      tokio::time::sleep(Duration::from_millis(10)).await;
    }
    now()
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn runs_every_job_at_most_max_at_once() {
    let lanes = Lanes::new(3);
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let jobs: Vec<_> = (0..40)
      .map(|i| {
        let (lanes, now, peak) = (lanes.clone(), now.clone(), peak.clone());
        tokio::spawn(async move {
          lanes
            .run(move || {
              let running = now.fetch_add(1, Ordering::SeqCst) + 1;
              peak.fetch_max(running, Ordering::SeqCst);
              std::thread::sleep(Duration::from_millis(2));
              now.fetch_sub(1, Ordering::SeqCst);
              i * 2
            })
            .await
        })
      })
      .collect();
    for (i, job) in jobs.into_iter().enumerate() {
      assert_eq!(job.await.unwrap(), Some(i * 2));
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(settled(&lanes).await, (0, 0));
  }

  #[tokio::test]
  async fn a_job_abandoned_in_the_queue_never_runs() {
    let lanes = Lanes::new(1);
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = std::sync::mpsc::channel::<()>();
    let busy = {
      let lanes = lanes.clone();
      tokio::spawn(async move {
        lanes
          .run(move || {
            started.send(()).unwrap();
            held.recv().unwrap()
          })
          .await
      })
    };
    while running.try_recv().is_err() {
      tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let queued = {
      let ran = ran.clone();
      lanes.run(move || ran.fetch_add(1, Ordering::SeqCst))
    };
    // Queued behind the busy lane; its caller gives up.
    assert!(
      tokio::time::timeout(Duration::from_millis(50), queued)
        .await
        .is_err()
    );
    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    assert_eq!(settled(&lanes).await, (0, 0));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "an abandoned job ran");
    assert_eq!(lanes.run(|| 3).await, Some(3));
  }

  #[tokio::test]
  async fn a_panic_reaches_the_caller_and_the_lane_goes_on() {
    let lanes = Lanes::new(1);
    let caller = {
      let lanes = lanes.clone();
      tokio::spawn(async move { lanes.run(|| panic!("a bug in a rule")).await })
    };
    let panic = caller.await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"a bug in a rule"));
    assert_eq!(lanes.run(|| 7).await, Some(7));
  }

  #[tokio::test]
  async fn jobs_left_by_a_drainer_that_never_ran_answer_none() {
    let lanes = Lanes::new(1);
    // As `push` leaves things when the runtime then drops its blocking task unrun (shutdown).
    let (done, result) = tokio::sync::oneshot::channel::<()>();
    {
      let mut queue = lanes.lock();
      queue.jobs.push_back(Box::new(move || {
        let _ = done.send(());
      }));
      queue.drainers = 1;
    }
    drop(Drainer {
      lanes: lanes.clone(),
      finished: false,
    });
    assert!(result.await.is_err(), "the stranded job was not dropped");
    assert_eq!(lanes.run(|| 2).await, Some(2));
    assert_eq!(settled(&lanes).await, (0, 0));
  }
}
