//! The store's tests run on both backends: `on_each_backend` hands a test a fresh SQLite state
//! in memory, then a fresh PostgreSQL state (a new database of the throwaway cluster), and says
//! which one failed.

#![allow(dead_code)]

use opsync::store::Store;

#[path = "../pg_support/mod.rs"]
mod pg_support;

/// A fresh, empty PostgreSQL state.
pub fn postgres() -> Store {
    Store::open_postgres(&pg_support::database().target()).expect("PostgreSQL state opens")
}

/// A fresh, empty SQLite state in memory.
pub fn sqlite() -> Store {
    Store::open_in_memory().expect("SQLite state opens")
}

/// Runs `test` on a fresh SQLite state, then on a fresh PostgreSQL state; a failure names the
/// backend.
pub fn on_each_backend(test: impl Fn(&Store)) {
    for (name, open) in [("sqlite", sqlite as fn() -> Store), ("postgres", postgres)] {
        let store = open();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&store)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("on the {name} backend: {message}");
        }
    }
}
