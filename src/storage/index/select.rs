//! Matcher evaluation over postings, with Prometheus semantics: a matcher
//! that accepts `""` also selects series lacking the label, so it is
//! evaluated as "all series minus those whose value it rejects".

use super::IndexReader;
use crate::model::{MatchOp, Matcher};
use crate::storage::api::StorageError;
use crate::storage::views::LE;

/// Sorted-list intersection.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Sorted-list difference `a \ b`.
fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while b.get(j).is_some_and(|&y| y < x) {
                j += 1;
            }
            b.get(j) != Some(&x)
        })
        .collect()
}

impl IndexReader {
    /// Ids (ascending) of series that may match `matchers`. Float series are
    /// selected exactly. Histogram series are candidates whenever their
    /// non-`le` labels match, because `le` is not indexed and their views'
    /// names are: callers must apply `views::select_views` to them.
    pub(crate) fn select_ids(&self, matchers: &[Matcher]) -> Result<Vec<u32>, StorageError> {
        let mut ids = self.eval(matchers.iter())?;
        if matchers.iter().any(|m| m.name == LE) {
            let hist = self.histogram_ids()?;
            let wide = self.eval(matchers.iter().filter(|m| m.name != LE))?;
            ids.extend(intersect(&wide, &hist));
            ids.sort_unstable();
            ids.dedup();
        }
        Ok(ids)
    }

    fn eval<'a>(
        &self,
        matchers: impl Iterator<Item = &'a Matcher>,
    ) -> Result<Vec<u32>, StorageError> {
        let mut pos: Option<Vec<u32>> = None;
        let mut neg: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Series with a value the matcher rejects are excluded.
                neg.push(self.postings_for_values(&m.name, |v| !m.matches(v))?);
            } else {
                let p = if m.op == MatchOp::Equal {
                    self.postings(&m.name, &m.value)?
                } else {
                    self.postings_for_values(&m.name, |v| m.matches(v))?
                };
                pos = Some(match pos {
                    None => p,
                    Some(prev) => intersect(&prev, &p),
                });
            }
            if pos.as_ref().is_some_and(|p| p.is_empty()) {
                return Ok(Vec::new());
            }
        }
        let mut ids = pos.unwrap_or_else(|| (0..self.n_series()).collect());
        for n in neg {
            ids = subtract(&ids, &n);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[3, 4, 7]), vec![1, 5]);
        assert_eq!(subtract(&[1, 2], &[]), vec![1, 2]);
    }
}
