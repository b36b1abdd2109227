//! Labels -> series lookup keyed by a 64-bit hash of the label set computed
//! once per append (the same hash picks the lock stripe), with exact label
//! comparison and a side list for the rare hash collision.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::series::MemSeries;
use super::{FxBuild, FxHasher};
use crate::model::Labels;

/// The 64-bit hash of a label set used by [`LabelMap`].
pub(crate) fn labels_hash(labels: &Labels) -> u64 {
    let mut h = FxHasher::default();
    labels.hash(&mut h);
    h.finish()
}

/// One stripe of the head's series-by-labels index.
#[derive(Default, Debug)]
pub(crate) struct LabelMap {
    primary: HashMap<u64, Arc<MemSeries>, FxBuild>,
    /// Series whose hash is already taken in `primary` by other labels.
    collisions: Vec<(u64, Arc<MemSeries>)>,
}

impl LabelMap {
    /// The series with exactly these labels.
    pub(crate) fn get(&self, h: u64, labels: &Labels) -> Option<&Arc<MemSeries>> {
        match self.primary.get(&h) {
            Some(s) if s.labels == *labels => Some(s),
            Some(_) => self
                .collisions
                .iter()
                .find(|(ch, s)| *ch == h && s.labels == *labels)
                .map(|(_, s)| s),
            None => None,
        }
    }

    /// Inserts a series not yet present.
    pub(crate) fn insert(&mut self, h: u64, s: Arc<MemSeries>) {
        match self.primary.entry(h) {
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((h, s)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(s);
            }
        }
    }

    /// Removes the series with these labels, if present.
    pub(crate) fn remove(&mut self, h: u64, labels: &Labels) {
        if self.primary.get(&h).is_some_and(|s| s.labels == *labels) {
            self.primary.remove(&h);
            if let Some(i) = self.collisions.iter().position(|(ch, _)| *ch == h) {
                let (_, s) = self.collisions.swap_remove(i);
                self.primary.insert(h, s);
            }
        } else if let Some(i) = self
            .collisions
            .iter()
            .position(|(ch, s)| *ch == h && s.labels == *labels)
        {
            self.collisions.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::SeriesKind;

    #[test]
    fn collisions_are_resolved_by_labels() {
        let mut m = LabelMap::default();
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("b", "2")]);
        let c = Labels::from_pairs([("c", "3")]);
        // Force all three onto one hash.
        for (i, l) in [&a, &b, &c].into_iter().enumerate() {
            m.insert(
                7,
                Arc::new(MemSeries::new(i as u64, l.clone(), SeriesKind::Float)),
            );
        }
        assert_eq!(m.get(7, &b).unwrap().series_ref, 1);
        m.remove(7, &a);
        assert!(m.get(7, &a).is_none());
        assert_eq!(m.get(7, &b).unwrap().series_ref, 1);
        assert_eq!(m.get(7, &c).unwrap().series_ref, 2);
        m.remove(7, &c);
        assert_eq!(m.get(7, &b).unwrap().series_ref, 1);
        assert!(m.get(7, &c).is_none());
        assert!(m.get(8, &b).is_none());
    }
}
