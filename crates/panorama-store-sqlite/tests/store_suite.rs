//! The shared store test suite, run against the embedded store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

/// A store in a fresh temporary data dir, removed when the test ends.
async fn fresh() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let store = SqliteStore::open(dir.path(), SqliteOptions::default())
        .await
        .expect("a fresh store opens");
    (Arc::new(store), dir)
}

panorama_store::store_tests!(fresh());
panorama_store::ops_store_tests!(fresh());
panorama_store::ld_store_tests!(fresh());
