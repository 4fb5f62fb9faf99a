//! PostgreSQL as the shared state of several replicas: reaching the server, its numbered schema,
//! the leader lease with epoch fencing, the replicas registry, and copying a SQLite state in.

mod connect;
mod copy;
mod error;
mod keeper;
mod lease;
mod listen;
mod replicas;
mod schema;
mod store;

pub use connect::{PasswordSource, PgTarget};
pub use copy::{Copied, STATE_TABLES, copy_state};
pub use error::{FENCED_SQLSTATE, PgError, reason};
pub use keeper::{Keeper, LeaseTiming, Role};
pub use lease::{LEADER_LEASE, Lease, LeaseRow, Standing, fence, lease_row};
pub use listen::{LEDGER_CHANNEL, listen_for_ledger};
pub use replicas::{Replica, SeenReplica, heartbeat, leave, seen};
pub use schema::{PG_SCHEMA_VERSION, migrate};
pub(crate) use store::{PgStore, STANDING_BY};
