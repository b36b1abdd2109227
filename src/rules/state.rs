//! Exact alert-state persistence (spec §2.7, DIVERGE-2, `restore: exact`):
//! after each evaluation a group writes its alert maps to
//! `<dir>/<fnv64(file;name)>.state` (JSON; temp file + fsync + rename, so a
//! crash leaves the old or the new snapshot, never a torn one). At process
//! start a snapshot younger than the outage tolerance is loaded as it was:
//! firing, keep-firing and resolved alerts survive with their timers, and
//! pending alerts have the missed evaluation time added to `active_at`
//! (downtime does not count toward `for`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Labels;

use super::alerting::{ActiveAlert, AlertState};
use super::group::{Group, Rule};

/// Snapshot format version; bump on incompatible changes (old snapshots
/// are then ignored and the compat restore runs instead).
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    group: String,
    /// Timestamp of the evaluation the snapshot was taken after (ms).
    last_eval_ms: i64,
    rules: Vec<RuleSnap>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RuleSnap {
    name: String,
    labels: BTreeMap<String, String>,
    alerts: Vec<AlertSnap>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AlertSnap {
    state: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// `None` for NaN/Inf (JSON has no such numbers; refreshed next eval).
    value: Option<f64>,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    last_sent_at: Option<i64>,
    valid_until: Option<i64>,
    keep_firing_since: Option<i64>,
}

/// The snapshot path of a group.
pub fn snapshot_path(dir: &Path, group_key: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group_key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir.join(format!("{h:016x}.state"))
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|x| (x.name.to_string(), x.value.to_string()))
        .collect()
}

/// Writes the group's alert state after an evaluation at `ts`.
pub fn save(dir: &Path, g: &Group, ts: i64) -> std::io::Result<()> {
    let rules = g
        .rules
        .iter()
        .filter_map(|r| match r {
            Rule::Alerting { rule, .. } => Some(RuleSnap {
                name: rule.spec.name().to_string(),
                labels: rule.spec.labels.clone(),
                alerts: rule
                    .active
                    .values()
                    .map(|a| AlertSnap {
                        state: a.state.as_str().to_string(),
                        labels: to_map(&a.labels),
                        annotations: a.annotations.clone(),
                        value: a.value.is_finite().then_some(a.value),
                        active_at: a.active_at,
                        fired_at: a.fired_at,
                        resolved_at: a.resolved_at,
                        last_sent_at: a.last_sent_at,
                        valid_until: a.valid_until,
                        keep_firing_since: a.keep_firing_since,
                    })
                    .collect(),
            }),
            Rule::Recording { .. } => None,
        })
        .collect();
    let snap = Snapshot {
        version: VERSION,
        group: g.key(),
        last_eval_ms: ts,
        rules,
    };
    let bytes = serde_json::to_vec(&snap).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let path = snapshot_path(dir, &g.key());
    let tmp = path.with_extension("state.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Make the rename durable; failure here only risks the old snapshot.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads the group's snapshot if it exists, matches the group and is
/// younger than `outage_tolerance_ms` at `now`; applies it and marks the
/// alerting rules restored. Returns true when a snapshot was applied.
pub fn load(dir: &Path, g: &mut Group, now: i64, outage_tolerance_ms: i64) -> bool {
    let path = snapshot_path(dir, &g.key());
    let Ok(bytes) = std::fs::read(&path) else {
        return false;
    };
    let snap: Snapshot = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring unreadable alert-state snapshot: {e}");
            return false;
        }
    };
    if snap.version != VERSION
        || snap.group != g.key()
        || now - snap.last_eval_ms > outage_tolerance_ms
    {
        return false;
    }
    // Only evaluation slots that were missed count as downtime.
    let downtime = (now - snap.last_eval_ms - g.interval_ms).max(0);
    let mut pool: Vec<Option<RuleSnap>> = snap.rules.into_iter().map(Some).collect();
    for r in &mut g.rules {
        let Rule::Alerting { rule, .. } = r else {
            continue;
        };
        let name = rule.spec.name().to_string();
        let Some(slot) = pool.iter_mut().find(|s| {
            s.as_ref()
                .is_some_and(|s| s.name == name && s.labels == rule.spec.labels)
        }) else {
            rule.restored = true;
            continue;
        };
        let Some(rs) = slot.take() else { continue };
        for a in rs.alerts {
            let state = match a.state.as_str() {
                "firing" => AlertState::Firing,
                "pending" => AlertState::Pending,
                _ => AlertState::Inactive,
            };
            let labels = Labels::from_pairs(a.labels);
            let active_at = if state == AlertState::Pending {
                a.active_at + downtime
            } else {
                a.active_at
            };
            rule.active.insert(
                labels.clone(),
                ActiveAlert {
                    state,
                    labels,
                    annotations: a.annotations,
                    value: a.value.unwrap_or(f64::NAN),
                    active_at,
                    fired_at: a.fired_at,
                    resolved_at: a.resolved_at,
                    last_sent_at: a.last_sent_at,
                    valid_until: a.valid_until,
                    keep_firing_since: a.keep_firing_since,
                },
            );
        }
        rule.restored = true;
    }
    true
}
