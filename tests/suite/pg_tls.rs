//! TLS to PostgreSQL with certificate verification. The server, on a
//! cluster of the test's own, listens on 127.0.0.1 and takes TCP connections
//! with TLS only, so a vault command that works over TCP used TLS. Its
//! certificate is signed by a test CA, for the name `localhost` only.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use super::common::{FAST_KDF_ARGS, OwnCluster, PASSPHRASE, TempVault, fails, ok, stderr, stdout};

/// `openssl req` with a new P-256 key, unencrypted, and `args`.
fn new_key_request(dir: &Path, args: &[&str]) {
    let new_key = [
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(dir, &[&new_key[..], args].concat());
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (install it; run the suite with scripts/test.sh)");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A self-signed CA in `dir`: `NAME.pem` and `NAME.key`.
fn ca(dir: &Path, name: &str) {
    new_key_request(
        dir,
        &[
            "-x509",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=authvault test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `server.crt` and `server.key` in `dir`, for `localhost`, signed by `ca`.
fn server_certificate(dir: &Path) {
    new_key_request(
        dir,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn verify_full_reaches_the_named_server_over_tls_and_refuses_any_other_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    ca(certs.path(), "ca");
    ca(certs.path(), "other-ca");
    server_certificate(certs.path());
    let port = free_port();
    let cluster = OwnCluster::started_with_tls(
        port,
        &certs.path().join("server.crt"),
        &certs.path().join("server.key"),
    );
    // The database, made over the Unix socket; the vault reaches it over TCP.
    let tv = TempVault::on_cluster(&cluster);
    let socket_url = url::Url::parse(tv.location().to_str().expect("URL")).expect("URL");
    let database = socket_url.path();
    let root = |name: &str| {
        certs
            .path()
            .join(format!("{name}.pem"))
            .display()
            .to_string()
    };
    let tcp =
        |host: &str, params: &str| format!("postgres://postgres@{host}:{port}{database}?{params}");
    let verified = tcp(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", root("ca")),
    );
    let vault = |url: &str, args: &[&str]| {
        let mut c = tv.cmd_at(url.as_ref(), args);
        c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE);
        c
    };

    let mut init = vec!["init", "--passphrase"];
    init.extend(FAST_KDF_ARGS);
    ok(&mut vault(&verified, &init));
    super::common::login_api_key(|a| vault(&verified, a), "openai", "work", "sk-over-tls");
    assert_eq!(
        stdout(&ok(&mut vault(&verified, &["token", "--account", "work"]))),
        "sk-over-tls\n"
    );
    let entries = || tv.raw_db().query_i64("SELECT count(*) FROM audit_log");
    let before = entries();

    // Each of these is refused before any statement: no token, no entry.
    let refused = [
        // The window: without TLS the server refuses TCP, so the calls
        // above went over TLS.
        (tcp("localhost", "sslmode=disable"), "pg_hba.conf"),
        // Another CA's root does not vouch for the server.
        (
            tcp(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={}", root("other-ca")),
            ),
            "TLS refused: invalid peer certificate: UnknownIssuer",
        ),
        // The right CA, but the certificate does not name 127.0.0.1.
        (
            tcp(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={}", root("ca")),
            ),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        // Over TCP without sslmode: verify-full against the system's roots,
        // which do not know the test CA.
        (
            tcp("localhost", ""),
            "TLS refused: invalid peer certificate: UnknownIssuer",
        ),
    ];
    for (url, why) in &refused {
        let out = fails(&mut vault(url, &["token", "--account", "work"]));
        let err = stderr(&out);
        assert!(err.contains(why), "{url}: {err}");
        // Refused, not lost: nothing is retried, and no line says otherwise.
        assert!(
            !err.contains("retrying") && !err.contains("lost"),
            "{url}: {err}"
        );
        assert_eq!(stdout(&out), "", "{url}");
    }
    assert_eq!(entries(), before, "a refused connection wrote nothing");
}
