//! `SqlStore` passes the store conformance suite on PostgreSQL (in a schema of this run's
//! own), MariaDB/MySQL (in a table of this run's own), and SQLite in a file and in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use common::{mysql_url, per_run, postgres_url};
use session_sql::SqlStore;

mod postgres {
    use super::*;

    session_core::store_conformance_tests!(async {
        common::drop_stale_postgres().await;
        SqlStore::builder(postgres_url())
            .schema(per_run("pg"))
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no PostgreSQL at {} (run `cargo xtask test sql`): {e:?}",
                    postgres_url()
                )
            })
    });
}

mod mysql {
    use super::*;

    session_core::store_conformance_tests!(async {
        common::drop_stale_mysql().await;
        SqlStore::builder(mysql_url())
            .table(per_run("mysql"))
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no MySQL/MariaDB at {} (run `cargo xtask test sql`): {e:?}",
                    mysql_url()
                )
            })
    });
}

mod sqlite_file {
    use super::*;

    fn url() -> String {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-sql");
        std::fs::create_dir_all(&dir).unwrap();
        format!(
            "sqlite://{}",
            dir.join(format!("{}.db", per_run("sqlite"))).display()
        )
    }

    session_core::store_conformance_tests!(async { SqlStore::connect(&url()).await.unwrap() });
}

mod sqlite_memory {
    use super::*;

    session_core::store_conformance_tests!(async {
        SqlStore::connect("sqlite::memory:").await.unwrap()
    });

    /// The queries are the same text for every database; one of them is enough.
    #[test]
    fn operation_futures_are_small() {
        session_core::store::conformance::run(
            || async { SqlStore::connect("sqlite::memory:").await.unwrap() },
            |store| async move { session_testkit::assert_small_futures(&*store) },
        );
    }
}
