//! Reveal auditing: every reveal is counted per plugin and field and logged without the value
//! (item fields at DEBUG, config secrets at INFO once per call), and revealed values never reach
//! the logs. Its own test binary, so no other test thread races
//! the thread-local `tracing` subscriber it installs.

mod plugin_support;

use opsync::plugin::{ChangeKind, Grants};
use plugin_support::{event, guest_spec, host, item, tight_limits};

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn reveals_are_counted_and_logged_per_plugin_and_field_and_logs_are_redacted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_env_filter("warn,opsync=debug")
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let host = host();
                let plugin = host
                    .load(guest_spec(
                        "leaky",
                        &[("mode", "reveal-and-leak")],
                        tight_limits(),
                        Grants::default(),
                    ))
                    .expect("loads");
                let _ = plugin.deliver(&event(item("x"), ChangeKind::Updated)).await;
                let with_token = host
                    .load(guest_spec(
                        "credentialed",
                        &[("mode", "config-secret"), ("token", "t0ken-value")],
                        tight_limits(),
                        Grants::default(),
                    ))
                    .expect("loads");
                for _ in 0..2 {
                    with_token
                        .deliver(&event(item("y"), ChangeKind::Updated))
                        .await
                        .expect("delivers");
                }
            })
        })
    });
    let metrics = prometheus.render();
    assert!(
        metrics
            .contains(r#"opsync_plugin_secret_reveals_total{plugin="leaky",field="username"} 1"#),
        "{metrics}"
    );
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    // Item fields revealed during a delivery: DEBUG, never INFO.
    let field_reveals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("plugin revealed a secret") && l.contains("/username"))
        .collect();
    assert_eq!(field_reveals.len(), 1, "{logs}");
    assert!(field_reveals[0].contains("DEBUG"), "{logs}");
    // A config secret: INFO, once per call although the plugin revealed it twice in each call.
    let config_reveals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("plugin revealed a secret") && l.contains("config:token"))
        .collect();
    assert_eq!(config_reveals.len(), 2, "one per call: {logs}");
    assert!(config_reveals.iter().all(|l| l.contains("INFO")), "{logs}");
    assert!(
        metrics.contains(
            r#"opsync_plugin_secret_reveals_total{plugin="credentialed",field="token"} 4"#
        ),
        "every reveal is counted: {metrics}"
    );
    assert!(!logs.contains("t0ken-value"), "{logs}");
    assert!(
        logs.contains("vlt0000000000000000000000a/itm0000000000000000000000a/username"),
        "{logs}"
    );
    assert!(logs.contains("the value is [REDACTED]"), "{logs}");
    assert!(logs.contains("stdout also has [REDACTED]"), "{logs}");
    assert!(!logs.contains("alice"), "{logs}");
}
