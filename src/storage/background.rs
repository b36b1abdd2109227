//! The one shape of storage's background threads (WAL fsync timer, head
//! maintenance): run a job every interval until told to stop or until the
//! owner is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Stop signal shared with a background loop: set the flag, then notify.
pub(crate) type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// Calls `job` on the owner every `every` until `stop` is set or the owner
/// (held weakly, so the loop never keeps it alive) is dropped. A stop wakes
/// the loop at once; the job is never started after a stop was seen.
pub(crate) fn run_every<T>(owner: Weak<T>, stop: StopSignal, every: Duration, job: impl Fn(&T)) {
    let (m, c) = &*stop;
    loop {
        {
            let mut stopped = m.lock();
            if !*stopped {
                c.wait_for(&mut stopped, every);
            }
            if *stopped {
                return;
            }
        }
        let Some(owner) = owner.upgrade() else { return };
        job(&owner);
    }
}
