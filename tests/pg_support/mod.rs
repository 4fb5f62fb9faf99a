//! A throwaway PostgreSQL cluster for the tests: `initdb` in a temp dir (as the `postgres` user
//! when the tests run as root, which initdb refuses), a server on a free 127.0.0.1 port that
//! takes password logins only, and a fresh database per test. The server is this test process's
//! child and stops when the process ends (its parent-death signal is a fast shutdown).

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The superuser the cluster is made with; tests log in as it.
pub const USER: &str = "opsync";

/// One cluster per test process, and one that also speaks TLS.
static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Databases made so far, for unique names.
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The running cluster.
pub struct Cluster {
    pub port: u16,
    pub password: String,
    /// A file holding the password (for `--password-file`).
    pub password_file: PathBuf,
    /// With TLS: the PEM file of the CA that signed the server's certificate (for 127.0.0.1).
    pub ca_file: Option<PathBuf>,
    dir: PathBuf,
}

/// A fresh, empty database of the cluster.
pub struct Database {
    pub name: String,
    /// `postgres://opsync@127.0.0.1:PORT/NAME?sslmode=disable`: no password in it.
    pub url: String,
    pub password: String,
    pub password_file: PathBuf,
    cluster: &'static Cluster,
}

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start(false))
}

/// A cluster that also accepts TLS, with a certificate for 127.0.0.1 only, started on first use.
pub fn tls_cluster() -> &'static Cluster {
    TLS_CLUSTER.get_or_init(|| Cluster::start(true))
}

/// A new database in the cluster.
pub fn database() -> Database {
    cluster().database()
}

/// PostgreSQL's server programs: `$OPSYNC_PG_BIN`, else the newest `/usr/lib/postgresql/N/bin`.
/// Missing means the machine was not set up: fail (never skip) and say how to fix it.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OPSYNC_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql: run scripts/setup-system.sh \
             (Debian package postgresql-15), or set OPSYNC_PG_BIN to its bin directory"
        )
    })
}

/// The uid and gid to run the server as: the `postgres` user when we are root.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "running as root, the tests start PostgreSQL as the user postgres, which does not \
             exist: run scripts/setup-system.sh"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    Some((id("-u"), id("-g")))
}

impl Cluster {
    fn start(tls: bool) -> Cluster {
        remove_stale_clusters();
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("opsync-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string()).expect("owner");
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let password_file = dir.join("password");
        std::fs::write(&password_file, format!("{password}\n")).expect("password file");
        let user = server_user();
        if let Some((uid, gid)) = user {
            for p in [dir.as_path(), password_file.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
            }
        }
        let as_server = |program: &str| {
            let mut c = Command::new(bin.join(program));
            if let Some((uid, gid)) = user {
                c.uid(uid).gid(gid);
            }
            c
        };
        let out = as_server("initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ca_file = tls.then(|| write_identity(&dir, user));
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.join("server.log"), Some(uid), Some(gid)).expect("chown");
        }
        let mut server = as_server("postgres");
        server
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                // Statement logs (a bench turns them on per database) name the session's
                // application and database.
                "-c",
                "log_line_prefix=%a|%d|",
            ])
            .stdin(Stdio::null());
        if tls {
            server.args(["-c", "ssl=on", "-c"]);
            server.arg(format!(
                "ssl_cert_file={}",
                dir.join("server.crt").display()
            ));
            server.arg("-c");
            server.arg(format!("ssl_key_file={}", dir.join("server.key").display()));
        }
        server.stdout(log.try_clone().expect("log")).stderr(log);
        // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
        unsafe {
            server.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The parent-death signal follows the thread that spawned the server: a thread that
        // lives as long as the process does.
        let (started, spawned) = std::sync::mpsc::channel();
        std::thread::spawn(move || match server.spawn() {
            Ok(mut child) => {
                started.send(Ok(())).ok();
                let _ = child.wait();
            }
            Err(e) => {
                started.send(Err(e)).ok();
            }
        });
        spawned
            .recv()
            .expect("server thread")
            .expect("start postgres");
        let cluster = Cluster {
            port,
            password,
            password_file,
            ca_file,
            dir,
        };
        cluster.wait_ready();
        cluster
    }

    /// Waits until the server answers a query.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.psql("postgres", "SELECT 1").is_ok() {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("PostgreSQL did not start within 60 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one statement with psql in `database`; its output (unaligned, no headers).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .env("PGPASSWORD", &self.password)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A new empty database.
    pub fn database(&'static self) -> Database {
        self.database_with("sslmode=disable")
    }

    /// A new empty database, its URL ending in `?query`.
    pub fn database_with(&'static self, query: &str) -> Database {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("create database");
        Database {
            url: format!("postgres://{USER}@127.0.0.1:{}/{name}?{query}", self.port),
            name,
            password: self.password.clone(),
            password_file: self.password_file.clone(),
            cluster: self,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Database {
    /// Runs one statement in this database with psql.
    pub fn psql(&self, sql: &str) -> String {
        self.cluster
            .psql(&self.name, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// The target opsync connects to, with the password from its file.
    pub fn target(&self) -> opsync::store::postgres::PgTarget {
        opsync::store::postgres::PgTarget::parse(
            "test",
            &self.url,
            &opsync::store::postgres::PasswordSource::File(self.password_file.clone()),
        )
        .expect("test database URL")
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it, written into `dir` as
/// `server.crt` and `server.key` (the server's, mode 0600) and `ca.pem`, which is returned.
fn write_identity(dir: &Path, user: Option<(u32, u32)>) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("sign the server certificate");
    std::fs::write(dir.join("server.crt"), cert.pem()).expect("server.crt");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("server.key");
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("key mode");
    if let Some((uid, gid)) = user {
        for f in ["server.crt", "server.key"] {
            std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).expect("chown");
        }
    }
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("ca.pem");
    ca_file
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Removes clusters left by test processes that are gone (their server stopped with them).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("opsync-pg-"))
            && std::fs::read_to_string(path.join("owner.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
