//! `opsync state migrate`: copies a SQLite state, as one consistent snapshot even while a daemon
//! writes it, into an empty PostgreSQL state in one transaction, and checks the counts.

use futures_util::pin_mut;
use rusqlite::types::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::store::postgres::error::PgContext;
use crate::store::postgres::{PgError, PgTarget, migrate};
use crate::store::{SqliteStore, Store, StoreError};

/// Every table of the state, in an order where nothing refers to a later one.
pub const STATE_TABLES: &[&str] = &[
    "meta",
    "vaults",
    "items",
    "members",
    "ledger",
    "holds",
    "rotation_jobs",
    "audit_outbox",
    "audit_tail",
    "audit_sinks",
    "audit_dead",
    "fingerprints",
    "audit_streams",
    "audit_replays",
];

/// Identity columns whose sequences continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("ledger", "id"),
    ("audit_outbox", "seq"),
    ("audit_dead", "id"),
    ("audit_replays", "id"),
];

/// What a copy wrote: rows per table, in [`STATE_TABLES`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// A table's columns as PostgreSQL declares them.
struct Columns {
    names: Vec<String>,
    types: Vec<Type>,
}

/// One value on its way from SQLite to a PostgreSQL column.
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Real(v) => v,
            Cell::Text(v) => v,
        }
    }
}

/// Copies every table of `source` into `target`, which must hold no state yet (its schema is
/// created or brought up to date first). All or nothing: one PostgreSQL transaction.
pub async fn copy_state(source: &Store, target: &PgTarget) -> Result<Copied, PgError> {
    let mut client = target.connect().await?;
    migrate(&mut client).await?;
    let tx = client.transaction().await.op("begin the copy")?;
    let mut columns = Vec::with_capacity(STATE_TABLES.len());
    for &table in STATE_TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .op("count the target's rows")?
            .get(0);
        if rows > 0 {
            return Err(PgError::NotEmpty {
                target: target.to_string(),
                table,
                rows,
            });
        }
        columns.push(pg_columns(&tx, table).await?);
    }
    let names: Vec<Vec<String>> = columns.iter().map(|c| c.names.clone()).collect();
    let snapshot = source
        .blocking(move |s| match s.sqlite() {
            Some(db) => db.snapshot(&names),
            None => Err(StoreError::NotSupported("state migrate --from")),
        })
        .await?;

    let mut copied = Vec::with_capacity(STATE_TABLES.len());
    for ((&table, cols), rows) in STATE_TABLES.iter().zip(&columns).zip(snapshot) {
        let cells = rows
            .into_iter()
            .map(|row| to_cells(table, cols, row))
            .collect::<Result<Vec<_>, _>>()?;
        write_table(&tx, table, cols, &cells).await?;
        let landed: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .op("count the copied rows")?
            .get(0);
        if landed as usize != cells.len() {
            return Err(PgError::Sqlite(StoreError::Corrupt(format!(
                "table {table}: {} rows read, {landed} written",
                cells.len()
            ))));
        }
        copied.push((table, cells.len() as u64));
    }
    for (table, column) in IDENTITIES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                 coalesce(max({column}), 0) + 1, false) FROM {table}"
            ),
            &[],
        )
        .await
        .op("continue the ids after the copied ones")?;
    }
    tx.commit().await.op("commit the copy")?;
    Ok(Copied { tables: copied })
}

/// The columns of `table`, in their declared order.
async fn pg_columns(tx: &tokio_postgres::Transaction<'_>, table: &str) -> Result<Columns, PgError> {
    let rows = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .op("read the target's columns")?;
    let mut columns = Columns {
        names: Vec::new(),
        types: Vec::new(),
    };
    for row in rows {
        let name: String = row.get(0);
        let kind: String = row.get(1);
        let ty = match kind.as_str() {
            "bigint" => Type::INT8,
            "double precision" => Type::FLOAT8,
            "text" => Type::TEXT,
            other => {
                return Err(PgError::Sqlite(StoreError::Corrupt(format!(
                    "PostgreSQL column {table}.{name} has type {other}, which a copy cannot fill"
                ))));
            }
        };
        columns.names.push(name);
        columns.types.push(ty);
    }
    Ok(columns)
}

/// One SQLite row as the PostgreSQL columns take it.
fn to_cells(table: &str, cols: &Columns, row: Vec<Value>) -> Result<Vec<Cell>, PgError> {
    row.into_iter()
        .zip(cols.names.iter().zip(&cols.types))
        .map(|(value, (name, ty))| {
            let cell = match (value, ty) {
                (Value::Null, t) if *t == Type::INT8 => Cell::Int(None),
                (Value::Null, t) if *t == Type::FLOAT8 => Cell::Real(None),
                (Value::Null, _) => Cell::Text(None),
                (Value::Integer(i), t) if *t == Type::INT8 => Cell::Int(Some(i)),
                (Value::Integer(i), t) if *t == Type::FLOAT8 => Cell::Real(Some(i as f64)),
                (Value::Real(r), t) if *t == Type::FLOAT8 => Cell::Real(Some(r)),
                (Value::Text(s), t) if *t == Type::TEXT => Cell::Text(Some(s)),
                (other, t) => {
                    return Err(PgError::Sqlite(StoreError::Corrupt(format!(
                        "table {table}, column {name}: a {:?} value does not fit PostgreSQL type {t}",
                        other.data_type()
                    ))));
                }
            };
            Ok(cell)
        })
        .collect()
}

/// Writes rows with one binary `COPY`.
async fn write_table(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    cols: &Columns,
    rows: &[Vec<Cell>],
) -> Result<(), PgError> {
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            cols.names.join(", ")
        ))
        .await
        .op("start copying a table")?;
    let writer = BinaryCopyInWriter::new(sink, &cols.types);
    pin_mut!(writer);
    for row in rows {
        let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(Cell::as_sql).collect();
        writer.as_mut().write(&values).await.op("copy a row")?;
    }
    writer.finish().await.op("finish copying a table")?;
    Ok(())
}

impl SqliteStore {
    /// Every row of each table, with the columns named, read in one transaction: one snapshot
    /// of the database even while another process writes it.
    fn snapshot(&self, tables: &[Vec<String>]) -> Result<Vec<Vec<Vec<Value>>>, StoreError> {
        use crate::store::error::SqlContext;
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin the snapshot")?;
        let mut all = Vec::with_capacity(tables.len());
        for (table, columns) in STATE_TABLES.iter().zip(tables) {
            let mut stmt = tx
                .prepare(&format!("SELECT {} FROM {table}", columns.join(", ")))
                .op("read a table to copy")?;
            let rows = stmt
                .query_map([], |row| {
                    (0..columns.len())
                        .map(|i| row.get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .op("read a table to copy")?
                .collect::<Result<Vec<_>, _>>()
                .op("read a row to copy")?;
            all.push(rows);
        }
        Ok(all)
    }
}
