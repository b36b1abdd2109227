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
