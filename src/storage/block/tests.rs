//! Unit tests for block ids and small helpers; the end-to-end block tests
//! live in `tests/storage_blocks.rs`.

use super::*;

#[test]
fn block_ids_are_unique_and_recognized() {
    let a = new_block_id();
    let b = new_block_id();
    assert_ne!(a, b);
    assert!(is_block_id(&a), "{a}");
    assert!(!is_block_id("wal"));
    assert!(!is_block_id(&format!("{a}.tmp")));
    assert!(!is_block_id(&a.to_lowercase()));
}

#[test]
fn sample_count() {
    let d = BlockSeriesData::Histogram {
        runs: vec![HistogramRun {
            upper_bounds: Arc::from(vec![1.0]),
            timestamps: vec![1, 2],
            buckets: vec![vec![0.0; 2]; 2],
            sum: vec![0.0; 2],
            count: vec![0.0; 2],
        }],
    };
    assert_eq!(d.sample_count(), 2);
}
