//! The PostgreSQL driver (`db::pg`) against the real private cluster that
//! `scripts/test.sh` starts. Each test works in a database of its own,
//! created on the cluster and dropped `WITH (FORCE)` at the end.

use authvault::db::pg::{DatabaseUrl, PgConn, PgError};
use authvault::db::sql::{Arg, Kind, Value};

use crate::suite::common::OwnCluster;

/// The cluster's superuser URL (a Unix socket). Missing → the test fails.
#[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
fn cluster_url() -> String {
    std::env::var("AUTHVAULT_TEST_PG_URL")
        .expect("AUTHVAULT_TEST_PG_URL is not set: run under scripts/test.sh (it starts a private PostgreSQL)")
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("{:016x}", u64::from_le_bytes(bytes))
}

fn connect(url: &str) -> PgConn {
    let url = DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{e}"));
    PgConn::connect(&url).unwrap_or_else(|e| panic!("{e}"))
}

/// A database of its own on the shared cluster.
struct TestDb {
    admin: PgConn,
    name: String,
}

impl TestDb {
    fn new() -> Self {
        let admin = connect(&cluster_url());
        let name = format!("av_{}", random_hex());
        admin.batch(&format!("CREATE DATABASE {name}")).unwrap();
        Self { admin, name }
    }

    /// The URL of this database, as `user` (with `password`, if any).
    fn url_as(&self, user: &str, password: Option<&str>) -> String {
        let mut url = ::url::Url::parse(&cluster_url()).unwrap();
        url.set_path(&self.name);
        url.set_username(user).unwrap();
        url.set_password(password).unwrap();
        url.to_string()
    }

    fn connect(&self) -> PgConn {
        connect(&self.url_as("postgres", None))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch(&format!("DROP DATABASE {} WITH (FORCE)", self.name));
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[test]
fn numbered_placeholders_bind_by_number_and_stay_text_inside_literals() {
    let db = TestDb::new();
    let conn = db.connect();
    let args: Vec<Arg<'_>> = (1..=12).map(Arg::I64).collect();
    let rows = conn
        .query(
            "SELECT ?12, ?1, '?1 and ?', \"?column\" FROM (SELECT ?2 AS \"?column\") t -- ?3\n WHERE ?11 = 11",
            &args,
        )
        .unwrap();
    assert_eq!(
        rows,
        [vec![
            Value::I64(12),
            Value::I64(1),
            text("?1 and ?"),
            Value::I64(2)
        ]]
    );

    let refused = conn.query("SELECT ?1, ?2", &[Arg::I64(1)]).unwrap_err();
    assert!(
        matches!(&refused, PgError::Other(m) if m.contains("takes 2 parameters but 1 were given")),
        "{refused:?}"
    );
    // The connection is still usable after a refusal.
    assert_eq!(
        conn.query("SELECT ?1", &[Arg::I64(7)]).unwrap(),
        [vec![Value::I64(7)]]
    );
}

#[test]
fn a_null_parameter_carries_its_type() {
    let db = TestDb::new();
    let conn = db.connect();
    for (kind, present, expected) in [
        (Kind::Text, Arg::Text("b"), text("b")),
        (Kind::I64, Arg::I64(5), Value::I64(5)),
        (Kind::Blob, Arg::Blob(b"\x00\x01"), Value::Blob(vec![0, 1])),
    ] {
        let rows = conn
            .query(
                "SELECT ?3 IS NULL, ?1 IS NULL, coalesce(?3, ?1)",
                &[present, Arg::Text("unused"), Arg::Null(kind)],
            )
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            rows,
            [vec![Value::Bool(true), Value::Bool(false), expected]],
            "{kind:?}"
        );
    }
}

#[test]
fn columns_come_back_as_neutral_values_and_other_types_are_refused_by_name() {
    let db = TestDb::new();
    let conn = db.connect();
    conn.batch(
        "CREATE TABLE t (a INT4, b INT8, c BOOL, d TEXT, e BYTEA, f INT2, g VARCHAR(10), h TEXT)",
    )
    .unwrap();
    let inserted = conn
        .execute(
            "INSERT INTO t VALUES (?1, ?2, ?3 = 1, ?4, ?5, CAST(?6 AS INT2), ?7, ?8)",
            &[
                Arg::I64(-7),
                Arg::I64(i64::MAX),
                Arg::I64(1),
                Arg::Text("héllo"),
                Arg::Blob(&[0, 255, 7]),
                Arg::I64(300),
                Arg::Text("short"),
                Arg::Null(Kind::Text),
            ],
        )
        .unwrap();
    assert_eq!(inserted, 1);
    assert_eq!(
        conn.query("SELECT a, b, c, d, e, f, g, h FROM t", &[])
            .unwrap(),
        [vec![
            Value::I64(-7),
            Value::I64(i64::MAX),
            Value::Bool(true),
            text("héllo"),
            Value::Blob(vec![0, 255, 7]),
            Value::I64(300),
            text("short"),
            Value::Null,
        ]]
    );

    let refused = conn
        .query("SELECT COALESCE(SUM(b), 0) AS total FROM t", &[])
        .unwrap_err();
    assert!(
        matches!(&refused, PgError::Other(m) if m.contains("'total'") && m.contains("NUMERIC")),
        "{refused:?}"
    );
    assert_eq!(
        conn.query("SELECT CAST(COALESCE(SUM(a), 0) AS BIGINT) FROM t", &[])
            .unwrap(),
        [vec![Value::I64(-7)]]
    );
}

#[test]
fn begin_commit_and_rollback_run_as_batches() {
    let db = TestDb::new();
    let conn = db.connect();
    let other = db.connect();
    conn.batch("CREATE TABLE t (x INT8)").unwrap();
    let count = |c: &PgConn| c.query("SELECT count(*) FROM t", &[]).unwrap();

    conn.batch("BEGIN").unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", &[Arg::I64(1)])
        .unwrap();
    assert_eq!(count(&conn), [vec![Value::I64(1)]]);
    assert_eq!(count(&other), [vec![Value::I64(0)]]);
    conn.batch("ROLLBACK").unwrap();
    assert_eq!(count(&conn), [vec![Value::I64(0)]]);

    conn.batch("BEGIN").unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", &[Arg::I64(2)])
        .unwrap();
    conn.batch("COMMIT").unwrap();
    assert_eq!(count(&other), [vec![Value::I64(1)]]);

    conn.batch("BEGIN; INSERT INTO t VALUES (3); INSERT INTO t VALUES (4); COMMIT;")
        .unwrap();
    assert_eq!(count(&other), [vec![Value::I64(3)]]);
}

#[test]
fn a_unique_violation_is_23505_without_the_detail_that_quotes_the_value() {
    let db = TestDb::new();
    let conn = db.connect();
    conn.batch("CREATE TABLE t (x TEXT UNIQUE)").unwrap();
    let value = format!("value-{}", random_hex());
    conn.execute("INSERT INTO t VALUES (?1)", &[Arg::Text(&value)])
        .unwrap();
    let err = conn
        .execute("INSERT INTO t VALUES (?1)", &[Arg::Text(&value)])
        .unwrap_err();
    assert!(
        matches!(&err, PgError::Database { code, .. } if code == "23505"),
        "{err:?}"
    );
    assert!(!err.is_retryable_before_commit());
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&value), "{shown}");
        assert!(!shown.contains("already exists"), "DETAIL leaked: {shown}");
    }
}

/// Kills the server process behind `conn` and waits until it is gone.
fn terminate(db: &TestDb, conn: &PgConn) {
    let rows = conn.query("SELECT pg_backend_pid()", &[]).unwrap();
    let [row] = rows.as_slice() else {
        panic!("{rows:?}")
    };
    let [Value::I64(pid)] = row.as_slice() else {
        panic!("{row:?}")
    };
    let terminated = db
        .admin
        .query(
            "SELECT pg_terminate_backend(CAST(?1 AS INTEGER), 10000)",
            &[Arg::I64(*pid)],
        )
        .unwrap();
    assert_eq!(terminated, [vec![Value::Bool(true)]]);
}

#[test]
fn a_terminated_backend_is_a_lost_connection_that_knows_whether_commit_was_sent() {
    let db = TestDb::new();

    let conn = db.connect();
    terminate(&db, &conn);
    let err = conn.query("SELECT 1", &[]).unwrap_err();
    assert!(
        matches!(
            err,
            PgError::ConnectionLost {
                sent_commit: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable_before_commit());
    let again = conn.query("SELECT 1", &[]).unwrap_err();
    assert!(again.is_connection_lost(), "{again:?}");

    let conn = db.connect();
    conn.batch("CREATE TABLE t (x INT8)").unwrap();
    conn.batch("BEGIN").unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    terminate(&db, &conn);
    let err = conn.batch("COMMIT").unwrap_err();
    assert!(
        matches!(
            err,
            PgError::ConnectionLost {
                sent_commit: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable_before_commit());
    assert!(err.to_string().contains("unknown"), "{err}");
}

#[test]
fn the_driver_can_be_called_from_inside_a_tokio_runtime() {
    let db = TestDb::new();
    let url = DatabaseUrl::parse(&db.url_as("postgres", None)).unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for runtime in [current, multi] {
        let rows = runtime.block_on(async {
            let conn = PgConn::connect(&url).unwrap();
            let rows = conn.query("SELECT ?1", &[Arg::Text("inside")]).unwrap();
            drop(conn);
            rows
        });
        assert_eq!(rows, [vec![text("inside")]]);
    }
}

#[test]
fn a_scram_password_never_appears_in_errors_debug_or_display() {
    let db = TestDb::new();
    let role = format!("av_{}", random_hex());
    let password = format!("pw{}", random_hex());
    db.admin
        .batch(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE authvault_scram"
        ))
        .unwrap();
    let mut shown = Vec::new();

    // The right password logs in (SCRAM: the cluster requires it for this role).
    let in_userinfo = db.url_as(&role, Some(&password));
    let url = DatabaseUrl::parse(&in_userinfo).unwrap();
    shown.extend([url.to_string(), format!("{url:?}")]);
    let conn = PgConn::connect(&url).unwrap();
    assert_eq!(
        conn.query("SELECT current_user", &[]).unwrap(),
        [vec![text(&role)]]
    );
    let err = conn.query("SELECT * FROM missing", &[]).unwrap_err();
    shown.extend([err.to_string(), format!("{err:?}")]);
    drop(conn);

    // As a query parameter too.
    let in_query = format!("{}&password={password}", db.url_as(&role, None));
    let url = DatabaseUrl::parse(&in_query).unwrap();
    shown.extend([url.to_string(), format!("{url:?}")]);
    drop(PgConn::connect(&url).unwrap());

    // Without it, or with a wrong one, the login is refused.
    let wrong = format!("{password}x");
    for bad in [
        db.url_as(&role, None),
        db.url_as(&role, Some(&wrong)),
        in_userinfo.replace("host=", "host=/nonexistent"),
    ] {
        let err = PgConn::connect(&DatabaseUrl::parse(&bad).unwrap())
            .err()
            .unwrap_or_else(|| panic!("{bad} logged in"));
        shown.extend([err.to_string(), format!("{err:?}")]);
    }
    let err = DatabaseUrl::parse(&format!("{in_userinfo}&pasword={password}")).unwrap_err();
    shown.extend([err.to_string(), format!("{err:?}")]);

    assert!(
        shown.iter().any(|s| s.contains("28P01")),
        "no refused login among {shown:#?}"
    );
    for s in &shown {
        assert!(!s.contains(&password), "password shown in: {s}");
    }
    db.admin.batch(&format!("DROP ROLE {role}")).unwrap();
}

#[test]
fn a_patient_connection_waits_for_a_server_that_is_still_starting() {
    let cluster = OwnCluster::new();
    let url = DatabaseUrl::parse(&cluster.url()).unwrap();

    // No server yet: one attempt fails, a patient one gives up at its budget.
    for err in [
        PgConn::connect(&url).err(),
        PgConn::connect_retrying(&url, std::time::Duration::from_millis(300)).err(),
    ] {
        let err = err.expect("connected to a server that does not exist");
        assert!(err.is_connection_lost(), "{err:?}");
    }

    // The server comes up while a patient attempt is waiting for it.
    let starting = std::thread::scope(|scope| {
        let start = scope.spawn(|| cluster.script("start"));
        let conn = PgConn::connect_retrying(&url, authvault::db::pg::RETRY_BUDGET);
        (conn, start.join().unwrap())
    });
    let (conn, started) = starting;
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let conn = conn.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&started.stdout).trim(),
        cluster.url()
    );
    assert_eq!(conn.query("SELECT 1", &[]).unwrap(), [vec![Value::I64(1)]]);
}
