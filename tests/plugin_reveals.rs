//! Reveal auditing: every reveal is counted per plugin and field and logged without the value,
//! and revealed values never reach the logs. Its own test binary, so no other test thread races
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
        .with_max_level(tracing::Level::INFO)
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
    assert!(logs.contains("plugin revealed a secret"), "{logs}");
    assert!(
        logs.contains("vlt0000000000000000000000a/itm0000000000000000000000a/username"),
        "{logs}"
    );
    assert!(logs.contains("the value is [REDACTED]"), "{logs}");
    assert!(logs.contains("stdout also has [REDACTED]"), "{logs}");
    assert!(!logs.contains("alice"), "{logs}");
}
