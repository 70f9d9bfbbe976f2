//! The SQL each database gets: one place per statement, with `?` placeholders that
//! PostgreSQL receives as `$1, $2, ...`.

/// A supported database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

/// A table or schema name that is not a plain identifier.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid table or schema name (letters, digits and _, at most 63, not starting with a digit)")]
pub struct NameError(pub(crate) String);

/// Every statement the store runs, written for one dialect and one table.
#[derive(Debug, Clone)]
pub(crate) struct Queries {
    /// Idempotent DDL for a new table, in order.
    pub(crate) create_table: Vec<String>,
    /// binds: key, now. Selects data, expires_at, revision.
    pub(crate) load: String,
    /// DDL that brings a table made without `user_key` to the shape `create_table` makes,
    /// in order.
    pub(crate) add_user_key: Vec<String>,
    /// Fails where the table has no `user_key` column: whether `add_user_key` is due.
    pub(crate) probe_user_key: String,
    /// binds: key, data, expires_at, now, revision, user key or NULL. Affects 0 rows when
    /// the id exists.
    pub(crate) insert: String,
    /// binds: data, expires_at, now, revision, user key or NULL, key, now. Reuses the row
    /// of an expired session, binding it anew.
    pub(crate) take_over: String,
    /// binds: data, expires_at, new revision, key, now, expected revision
    pub(crate) update: String,
    /// binds: expires_at, key, now
    pub(crate) touch: String,
    /// binds: key
    pub(crate) delete: String,
    /// binds: key, now, expected revision
    pub(crate) delete_if_unchanged: String,
    /// binds: now, batch size
    pub(crate) delete_expired: String,
    /// binds: key, user key
    pub(crate) unbind: String,
    /// binds: user key, now. Selects id, data, expires_at.
    pub(crate) list_bound: String,
    /// binds: lower id (exclusive), upper id (exclusive), now. Selects the count.
    pub(crate) count: String,
    /// binds: lower id (exclusive), upper id (exclusive), now, limit. Selects id, data,
    /// expires_at in byte order of the id.
    pub(crate) scan: String,
}

/// The `user_key` column in MySQL: the charset and collation of the id column it holds
/// keys like.
const MYSQL_USER_KEY: &str = "user_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL";

pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let valid = name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(NameError(name.to_owned()))
    }
}

impl Dialect {
    fn quote(self, name: &str) -> String {
        match self {
            Self::MySql => format!("`{name}`"),
            Self::Postgres | Self::Sqlite => format!("\"{name}\""),
        }
    }

    /// The statements for `table` (in `schema`, PostgreSQL only). Names must have passed
    /// [`check_name`].
    pub(crate) fn queries(self, table: &str, schema: Option<&str>) -> Queries {
        let t = match schema {
            Some(schema) => format!("{}.{}", self.quote(schema), self.quote(table)),
            None => self.quote(table),
        };
        let index = self.quote(&format!("{table}_expires_at"));
        // Most sessions are anonymous: where the database can (not MySQL), only bound rows
        // are in the index on `user_key`.
        let user_index = self.quote(&format!("{table}_user_key"));
        let create_table = match self {
            // COLLATE "C": ids compare byte-wise, as `scan`'s ranges and cursors need,
            // whatever the database's locale, and the primary key still serves them.
            Self::Postgres => schema
                .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {}", self.quote(s)))
                .into_iter()
                .chain([
                    format!(
                        "CREATE TABLE IF NOT EXISTS {t} (id TEXT COLLATE \"C\" PRIMARY KEY, \
                         data BYTEA NOT NULL, expires_at BIGINT NOT NULL, \
                         created_at BIGINT NOT NULL, revision BIGINT NOT NULL, user_key TEXT)"
                    ),
                    format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
                    format!(
                        "CREATE INDEX IF NOT EXISTS {user_index} ON {t} (user_key) \
                         WHERE user_key IS NOT NULL"
                    ),
                ])
                .collect(),
            // ascii_bin: ids are case-sensitive, and MySQL's default collation is not.
            Self::MySql => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} (id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin \
                 NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL, expires_at BIGINT NOT NULL, \
                 created_at BIGINT NOT NULL, revision BIGINT NOT NULL, {MYSQL_USER_KEY}, \
                 INDEX {index} (expires_at), INDEX {user_index} (user_key))"
            )],
            Self::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, \
                     expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, \
                     revision INTEGER NOT NULL, user_key TEXT) WITHOUT ROWID"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
                format!(
                    "CREATE INDEX IF NOT EXISTS {user_index} ON {t} (user_key) \
                     WHERE user_key IS NOT NULL"
                ),
            ],
        };
        let add_user_key = match self {
            Self::Postgres => vec![
                format!(
                    "ALTER TABLE {t} ADD COLUMN user_key TEXT, \
                     ALTER COLUMN id SET DATA TYPE TEXT COLLATE \"C\""
                ),
                format!("CREATE INDEX {user_index} ON {t} (user_key) WHERE user_key IS NOT NULL"),
            ],
            Self::MySql => vec![format!(
                "ALTER TABLE {t} ADD COLUMN {MYSQL_USER_KEY}, ADD INDEX {user_index} (user_key)"
            )],
            Self::Sqlite => vec![
                format!("ALTER TABLE {t} ADD COLUMN user_key TEXT"),
                format!("CREATE INDEX {user_index} ON {t} (user_key) WHERE user_key IS NOT NULL"),
            ],
        };
        let columns = "(id, data, expires_at, created_at, revision, user_key) \
                       VALUES (?, ?, ?, ?, ?, ?)";
        let insert = match self {
            Self::Postgres => format!("INSERT INTO {t} {columns} ON CONFLICT (id) DO NOTHING"),
            Self::MySql => format!("INSERT IGNORE INTO {t} {columns}"),
            Self::Sqlite => format!("INSERT OR IGNORE INTO {t} {columns}"),
        };
        let delete_expired = match self {
            // MySQL cannot select from the table it deletes from, but has DELETE ... LIMIT;
            // PostgreSQL has no DELETE ... LIMIT.
            Self::MySql => format!("DELETE FROM {t} WHERE expires_at <= ? LIMIT ?"),
            // Checked on the deleted row too: PostgreSQL re-checks only that row's own
            // conditions after waiting for its lock, so a row a create took over meanwhile
            // would still match the subquery's older snapshot.
            Self::Postgres => format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= $1 \
                 LIMIT $2) AND expires_at <= $1"
            ),
            Self::Sqlite => format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= ? LIMIT ?)"
            ),
        };
        // Ranges of ids compare byte-wise: MySQL's ascii_bin and SQLite's default BINARY
        // collation do; PostgreSQL is told, in case the column has the database's locale.
        let id = match self {
            Self::Postgres => "id COLLATE \"C\"",
            Self::MySql | Self::Sqlite => "id",
        };
        let range = format!("{id} > ? AND {id} < ? AND expires_at > ?");
        let queries = Queries {
            create_table,
            add_user_key,
            load: format!(
                "SELECT data, expires_at, revision FROM {t} WHERE id = ? AND expires_at > ?"
            ),
            insert,
            take_over: format!(
                "UPDATE {t} SET data = ?, expires_at = ?, created_at = ?, revision = ?, \
                 user_key = ? WHERE id = ? AND expires_at <= ?"
            ),
            // The new revision differs from the expected one, so a matched row is a changed
            // row even where the row count is of changed rows (MySQL without FOUND_ROWS).
            update: format!(
                "UPDATE {t} SET data = ?, expires_at = ?, revision = ? \
                 WHERE id = ? AND expires_at > ? AND revision = ?"
            ),
            touch: format!("UPDATE {t} SET expires_at = ? WHERE id = ? AND expires_at > ?"),
            delete: format!("DELETE FROM {t} WHERE id = ?"),
            delete_if_unchanged: format!(
                "DELETE FROM {t} WHERE id = ? AND expires_at > ? AND revision = ?"
            ),
            delete_expired,
            probe_user_key: format!("SELECT user_key FROM {t} WHERE 1 = 0"),
            unbind: format!("UPDATE {t} SET user_key = NULL WHERE id = ? AND user_key = ?"),
            list_bound: format!(
                "SELECT id, data, expires_at FROM {t} WHERE user_key = ? AND expires_at > ?"
            ),
            count: format!("SELECT COUNT(*) FROM {t} WHERE {range}"),
            scan: format!(
                "SELECT id, data, expires_at FROM {t} WHERE {range} ORDER BY {id} LIMIT ?"
            ),
        };
        match self {
            Self::Postgres => queries.numbered(),
            Self::MySql | Self::Sqlite => queries,
        }
    }
}

impl Queries {
    /// PostgreSQL's placeholders are `$1`, `$2`, ...; a statement written with them
    /// already has no `?` and is left as it is.
    fn numbered(self) -> Self {
        let number = |sql: String| {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        };
        Self {
            create_table: self.create_table,
            add_user_key: self.add_user_key,
            load: number(self.load),
            insert: number(self.insert),
            take_over: number(self.take_over),
            update: number(self.update),
            touch: number(self.touch),
            delete: number(self.delete),
            delete_if_unchanged: number(self.delete_if_unchanged),
            delete_expired: number(self.delete_expired),
            probe_user_key: self.probe_user_key,
            unbind: number(self.unbind),
            list_bound: number(self.list_bound),
            count: number(self.count),
            scan: number(self.scan),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["sessions", "_s1", "app_sessions"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1s", "s-1", "s;drop", "s\"", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        let q = Dialect::Postgres.queries("sessions", Some("app"));
        assert_eq!(
            q.update,
            "UPDATE \"app\".\"sessions\" SET data = $1, expires_at = $2, revision = $3 \
             WHERE id = $4 AND expires_at > $5 AND revision = $6"
        );
        assert_eq!(q.create_table[0], "CREATE SCHEMA IF NOT EXISTS \"app\"");
    }

    #[test]
    fn postgres_ranges_compare_ids_byte_wise() {
        let q = Dialect::Postgres.queries("sessions", None);
        assert_eq!(
            q.scan,
            "SELECT id, data, expires_at FROM \"sessions\" WHERE id COLLATE \"C\" > $1 \
             AND id COLLATE \"C\" < $2 AND expires_at > $3 ORDER BY id COLLATE \"C\" LIMIT $4"
        );
        assert!(q.create_table[0].contains("id TEXT COLLATE \"C\" PRIMARY KEY"));
        assert!(q.add_user_key[0].contains("COLLATE \"C\""));
    }

    #[test]
    fn postgres_cleanup_checks_the_row_it_deletes() {
        let q = Dialect::Postgres.queries("sessions", None);
        assert_eq!(
            q.delete_expired,
            "DELETE FROM \"sessions\" WHERE id IN (SELECT id FROM \"sessions\" \
             WHERE expires_at <= $1 LIMIT $2) AND expires_at <= $1"
        );
    }

    #[test]
    fn mysql_uses_backticks_and_insert_ignore() {
        let q = Dialect::MySql.queries("sessions", None);
        assert!(q.insert.starts_with("INSERT IGNORE INTO `sessions`"));
        assert!(q.create_table[0].contains("COLLATE ascii_bin"));
    }
}
