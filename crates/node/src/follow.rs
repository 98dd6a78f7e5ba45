//! The node's background tasks: the follow loop (list, then watch; re-list when told;
//! periodic comparison), the heartbeat, and the timer that delivers delayed versions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use inregion_feed::wire::{NodeReport, Snapshot};
use inregion_feed::{ApplyError, Follower, NextRequest};
use tokio::sync::watch;

use crate::source::{FeedSource, SourceError};
use crate::state::{ApplyOutcome, Shared};

/// Retry delays after a failed request: 100 ms doubling to 2 s, reset on success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next retry (then doubles).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Waits until `rx` says stop (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Applies the follower's current state as a table. `after_snapshot`: the state comes
/// straight from a snapshot, so its custom regions are the newest there are and a region
/// key still unknown is made fail closed. Otherwise an unknown key makes the follower
/// re-read the snapshot (its next request), and the version is applied from that.
fn publish(sh: &Shared, f: &mut Follower, changed: bool, after_snapshot: bool) {
    let Some(version) = f.version() else {
        return;
    };
    let bindings: Vec<_> = f.bindings().collect();
    // The table from the cache at start is this very version: nothing to rebuild.
    let changed = changed && !sh.same_as_cache(version, &bindings, f.regions());
    match sh.apply_version(version, &bindings, f.regions(), changed, after_snapshot) {
        Ok(ApplyOutcome::NeedRegions(keys)) => {
            tracing::info!(
                ?keys,
                version,
                "unknown region keys: re-reading the snapshot for custom regions"
            );
            f.must_relist();
        }
        Ok(ApplyOutcome::Applied | ApplyOutcome::Unchanged) => {
            sh.source_applied(|| Snapshot {
                epoch: 0,
                version,
                purged_through: 0,
                regions: f.regions().to_vec(),
                bindings,
            });
        }
        Err(e) => tracing::error!(error = %e, version, "could not apply the version"),
    }
}

fn sync_counters(sh: &Shared, f: &Follower) {
    let mut s = sh.feed();
    s.changes_applied = f.changes_applied();
    s.relists = f.relists();
}

/// One periodic comparison with the snapshot. Returns `true` when it must be retried
/// soon (the source moved on while comparing).
async fn resync<S: FeedSource>(
    sh: &Shared,
    src: &S,
    f: &mut Follower,
    attempts: &mut u32,
) -> Result<bool, SourceError> {
    let s = src.snapshot().await?;
    sh.source_ok(s.version);
    let Some(mut held) = f.version() else {
        let differs = f.apply_snapshot(s);
        sync_counters(sh, f);
        publish(sh, f, differs, true);
        return Ok(false);
    };
    if s.version > held {
        // Catch up first, so that the comparison is at one version.
        match src.changes(held, Duration::ZERO).await {
            Ok(c) => {
                sh.source_ok(c.version);
                if f.apply_changes(held, c).is_ok() && f.version() != Some(held) {
                    sync_counters(sh, f);
                    publish(sh, f, true, false);
                }
            }
            Err(SourceError::TooFarBehind(_)) => f.must_relist(),
            Err(e) => return Err(e),
        }
        match f.version() {
            Some(v) => held = v,
            None => return Ok(false),
        }
    }
    if s.version == held || *attempts >= 3 {
        *attempts = 0;
        if !f.matches(&s) {
            let repaired = s.version == held;
            if repaired {
                tracing::warn!(
                    version = held,
                    "the periodic re-read differs from what is held: repaired"
                );
                sh.feed().repairs += 1;
            }
            let differs = f.apply_snapshot(s);
            sync_counters(sh, f);
            publish(sh, f, differs, true);
        }
        Ok(false)
    } else {
        *attempts += 1;
        Ok(true)
    }
}

/// Follows the source until `stop`: snapshot, then changes; re-lists on 410, another
/// epoch or a source that went back; retries the same `since` after a failure.
pub(crate) async fn follow<S: FeedSource>(
    sh: Arc<Shared>,
    src: Arc<S>,
    wait: Duration,
    resync_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // However this returns, the cache writer then writes the last version applied.
    struct CloseCache<'a>(&'a Shared);
    impl Drop for CloseCache<'_> {
        fn drop(&mut self) {
            self.0.close_cache();
        }
    }
    let _close_cache = CloseCache(&sh);
    let mut f = Follower::new();
    let mut backoff = Backoff::new();
    let mut next_resync = Instant::now() + resync_every;
    let mut attempts = 0;
    // After a failure the retry does not wait for a commit: a quick answer shows the
    // source is back (and clears `stale`) without waiting a whole long poll.
    let mut failing = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let step: Result<(), SourceError> = match f.next_request() {
            NextRequest::Snapshot => {
                let r = tokio::select! {
                    r = src.snapshot() => r,
                    _ = stopped(&mut stop) => return,
                };
                match r {
                    Ok(s) => {
                        sh.source_ok(s.version);
                        tracing::info!(
                            version = s.version,
                            bindings = s.bindings.len(),
                            "snapshot read"
                        );
                        let differs = f.apply_snapshot(s);
                        sync_counters(&sh, &f);
                        next_resync = Instant::now() + resync_every;
                        publish(&sh, &mut f, differs, true);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            NextRequest::Changes { .. } if Instant::now() >= next_resync => {
                let r = tokio::select! {
                    r = resync(&sh, &*src, &mut f, &mut attempts) => r,
                    _ = stopped(&mut stop) => return,
                };
                match r {
                    Ok(retry) => {
                        next_resync = Instant::now()
                            + if retry {
                                Duration::from_secs(1).min(resync_every)
                            } else {
                                resync_every
                            };
                        Ok(())
                    }
                    Err(e) => {
                        next_resync = Instant::now() + Duration::from_secs(1).min(resync_every);
                        Err(e)
                    }
                }
            }
            NextRequest::Changes { since } => {
                let w = if failing {
                    Duration::ZERO
                } else {
                    wait.min(next_resync.saturating_duration_since(Instant::now()))
                };
                let r = tokio::select! {
                    r = src.changes(since, w) => r,
                    _ = stopped(&mut stop) => return,
                };
                match r {
                    Ok(c) => {
                        sh.source_ok(c.version);
                        match f.apply_changes(since, c) {
                            Ok(_) => {
                                sync_counters(&sh, &f);
                                if f.version() != Some(since) {
                                    publish(&sh, &mut f, true, false);
                                    Ok(())
                                } else {
                                    Ok(())
                                }
                            }
                            Err(e @ ApplyError::SourceWentBack { .. }) => {
                                tracing::warn!(error = %e, "re-reading the snapshot");
                                Ok(())
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "late answer ignored");
                                Ok(())
                            }
                        }
                    }
                    Err(SourceError::TooFarBehind(m)) => {
                        tracing::info!(since, message = %m, "too far behind: re-reading the snapshot");
                        f.must_relist();
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match step {
            Ok(()) => {
                backoff.reset();
                failing = false;
            }
            Err(e) => {
                failing = true;
                sh.source_failed(e.to_string());
                let d = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stopped(&mut stop) => return,
                }
            }
        }
    }
}

/// Registers every node and reports its applied version: at start, every
/// `heartbeat_ms`, and at once when a version was applied.
pub(crate) async fn heartbeat<S: FeedSource>(
    sh: Arc<Shared>,
    src: Arc<S>,
    address: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = Duration::from_millis(1000);
    let mut failing = false;
    loop {
        let versions = sh.applied_versions();
        for ((dc, applied_version), id) in versions.into_iter().zip(sh.node_ids.clone()) {
            let report = NodeReport {
                dc,
                address: address.clone(),
                applied_version,
            };
            let r = tokio::select! {
                r = src.report(&id, &report) => r,
                _ = stopped(&mut stop) => return,
            };
            sh.registry_reached(match &r {
                Err(e @ SourceError::Transport(_)) => Some(format!("heartbeat: {e}")),
                _ => None,
            });
            match r {
                Ok(ans) => {
                    if failing {
                        tracing::info!(node_id = %id, "heartbeat accepted again");
                        failing = false;
                    }
                    every = Duration::from_millis(ans.heartbeat_ms.clamp(50, 60_000));
                    sh.set_registry(&ans.nodes);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(node_id = %id, error = %e, "heartbeat failed");
                        failing = true;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = sh.applied.notified() => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Calls the edge's `tick` at its next deadline (delayed deliveries, flow sweeps).
pub(crate) async fn timer(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let deadline = sh.core().edge.next_deadline();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(sh.instant_of(t).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let now = sh.now();
                let report = sh.core().edge.tick(now);
                if report.delivered > 0 {
                    tracing::debug!(delivered = report.delivered, "delayed versions delivered");
                    sh.applied.notify_one();
                }
            }
            _ = sh.timer.notified() => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_two_seconds_and_resets() {
        let mut b = Backoff::new();
        let got: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
