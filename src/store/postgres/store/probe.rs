//! The PostgreSQL state's write probe (for `/readyz`).

use chrono::Utc;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{StoreError, to_millis};

impl PgStore {
    /// Checks that the database can be written (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let now = to_millis(Utc::now()).to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&now],
            )
            .op("write probe")
            .map(drop)
        })
    }
}
