//! A real rsyslog (Debian package `rsyslog`, see scripts/setup-system.sh) for the syslog sink's
//! tests: `rsyslogd -n` with its own config, pid file and work directory in a temp dir, `imtcp` on
//! a free 127.0.0.1 port (octet-counted framing is detected per frame), writing every message
//! twice: raw (`raw.log`) and as rsyslog parsed it (`parsed.log`, one tab-separated line per
//! message: PRI, timestamp, hostname, app-name, procid, msgid, structured data as JSON, msg).
//! `start_tls` listens with TLS instead (`rsyslog-gnutls`, RFC 5425), with a self-signed
//! certificate for 127.0.0.1 made by `openssl`. Stopped (killed and reaped) on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Process, free_port};

/// rsyslogd: `$OPSYNC_RSYSLOGD`, else `/usr/sbin/rsyslogd`. Missing fails (never skips).
fn rsyslogd() -> PathBuf {
    let path = std::env::var_os("OPSYNC_RSYSLOGD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/rsyslogd"));
    assert!(
        path.is_file(),
        "rsyslogd not found at {}: run scripts/setup-system.sh (Debian package rsyslog) or set \
         OPSYNC_RSYSLOGD",
        path.display()
    );
    path
}

pub struct Rsyslog {
    pub port: u16,
    /// The server certificate (PEM, self-signed) when started with TLS.
    pub cert_pem: Option<String>,
    dir: tempfile::TempDir,
    process: Process,
}

impl Rsyslog {
    pub async fn start() -> Self {
        Self::start_with(free_port(), false).await
    }

    /// An rsyslog on `port` (e.g. the port of one stopped before, to simulate an outage).
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, false).await
    }

    /// With TLS on the listening port (anonymous clients, the server presents `cert_pem`).
    pub async fn start_tls() -> Self {
        Self::start_with(free_port(), true).await
    }

    async fn start_with(port: u16, tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let (global_tls, module_tls, input_tls, cert_pem) = if tls {
            let cert_pem = self_signed(dir.path());
            (
                format!(
                    r#" DefaultNetstreamDriverCAFile="{d}/cert.pem" DefaultNetstreamDriverCertFile="{d}/cert.pem" DefaultNetstreamDriverKeyFile="{d}/key.pem""#
                ),
                r#" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon""#,
                r#" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon""#,
                Some(cert_pem),
            )
        } else {
            (String::new(), "", "", None)
        };
        let conf = format!(
            r#"global(workDirectory="{d}" parser.escapeControlCharactersOnReceive="on"{global_tls})
module(load="imtcp"{module_tls})
module(load="mmpstrucdata")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="siem"{input_tls})
template(name="raw" type="string" string="%rawmsg%\n")
template(name="parsed" type="string"
         string="%pri%\t%timereported:::date-rfc3339%\t%hostname%\t%app-name%\t%procid%\t%msgid%\t%$!rfc5424-sd%\t%msg%\n")
ruleset(name="siem") {{
  action(type="mmpstrucdata")
  action(type="omfile" file="{d}/raw.log" template="raw")
  action(type="omfile" file="{d}/parsed.log" template="parsed")
}}
"#
        );
        let conf_path = dir.path().join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("write rsyslog.conf");
        let mut command = Command::new(rsyslogd());
        command
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"));
        let mut process = Process::spawn("rsyslogd", command);
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "rsyslogd exited ({status}); its output:\n{}",
                    process.output()
                );
            }
            assert!(
                started.elapsed() < super::START_TIMEOUT,
                "rsyslogd did not listen on {port}; its output:\n{}",
                process.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            port,
            cert_pem,
            dir,
            process,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn lines(&self, file: &str) -> Vec<String> {
        read_lines(&self.dir.path().join(file))
    }

    /// Waits until `parsed.log` has at least `n` lines (10 s at most) and returns them all.
    pub async fn wait_parsed(&self, n: usize) -> Vec<String> {
        self.wait(n).await;
        self.lines("parsed.log")
    }

    /// The parsed messages written so far (without waiting).
    pub fn parsed(&self) -> Vec<String> {
        self.lines("parsed.log")
    }

    /// Stops rsyslogd with SIGTERM (it writes out what it queued) and returns every parsed
    /// message it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.process.child.id() as libc::pid_t;
        // SAFETY: signalling our own child process by its pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = self.process.child.wait();
        self.lines("parsed.log")
    }

    /// The raw messages received so far.
    pub fn raw(&self) -> Vec<String> {
        self.lines("raw.log")
    }

    async fn wait(&self, n: usize) {
        let started = Instant::now();
        while self.lines("parsed.log").len() < n {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "rsyslog wrote {} of {n} messages; its output:\n{}",
                self.lines("parsed.log").len(),
                self.process.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Makes `cert.pem` and `key.pem` in `dir`: a self-signed P-256 end-entity certificate for
/// 127.0.0.1, valid for a day, which a client trusts by taking it as its CA; returns it.
pub fn self_signed(dir: &Path) -> String {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=opsync-test-syslog"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // An end-entity certificate (webpki refuses a CA as the server's own certificate).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl (scripts/setup-system.sh installs it)");
    assert!(
        status.success(),
        "openssl could not make a test certificate"
    );
    std::fs::read_to_string(dir.join("cert.pem")).expect("read cert.pem")
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}
