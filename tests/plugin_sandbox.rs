//! The sandbox against hostile plugins built by the test suite: each is stopped within its limit
//! with an error naming it, and the next event to it and to other plugins still works.

mod plugin_support;

use std::time::{Duration, Instant};

use opsync::plugin::{ChangeKind, FailureKind, Grants, PluginError, REDACTED};
use plugin_support::{event, guest_spec, host, item, tight_limits};

/// Calls `mode` through a `by-title` guest, so the same plugin instance can be hostile for one
/// event and well behaved for the next.
async fn deliver(
    plugin: &opsync::plugin::Plugin,
    mode: &str,
) -> (Result<opsync::plugin::Receipt, PluginError>, Duration) {
    let started = Instant::now();
    let result = plugin
        .deliver(&event(item(mode), ChangeKind::Updated))
        .await;
    (result, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_plugin_is_stopped_by_its_limit_and_the_host_keeps_serving() {
    let host = host();
    let hostile = host
        .load(guest_spec(
            "hostile",
            &[("mode", "by-title")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let bystander = host
        .load(guest_spec(
            "bystander",
            &[("mode", "ok")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");

    type Check = fn(&PluginError) -> bool;
    let cases: [(&str, Check, Duration); 8] = [
        (
            "loop",
            |e| matches!(e, PluginError::CpuLimit { .. }),
            Duration::from_secs(5),
        ),
        (
            "memory",
            |e| matches!(e, PluginError::MemoryLimit { .. }),
            Duration::from_secs(5),
        ),
        (
            "recursion",
            |e| matches!(e, PluginError::StackOverflow { .. }),
            Duration::from_secs(5),
        ),
        // Rust keeps big frames in linear memory: its stack runs out of memory, not of stack.
        (
            "shadow-recursion",
            |e| matches!(e, PluginError::Trap { message, .. } if message.contains("out of bounds")),
            Duration::from_secs(5),
        ),
        (
            "log-flood",
            |e| matches!(e, PluginError::LogFlood { .. }),
            Duration::from_secs(5),
        ),
        (
            "trap",
            |e| matches!(e, PluginError::Trap { .. }),
            Duration::from_secs(5),
        ),
        (
            "table-flood",
            |e| matches!(e, PluginError::Trap { .. }),
            Duration::from_secs(5),
        ),
        (
            "sleep",
            |e| matches!(e, PluginError::Timeout { .. }),
            Duration::from_secs(8),
        ),
    ];
    for (mode, check, within) in cases {
        let (result, elapsed) = deliver(&hostile, mode).await;
        let err = result.expect_err(mode);
        assert!(check(&err), "{mode}: unexpected error {err}");
        assert!(
            err.to_string().contains("plugin `hostile`"),
            "{mode}: {err}"
        );
        assert_eq!(err.plugin(), Some("hostile"));
        assert_eq!(err.kind(), FailureKind::Retryable, "{mode}");
        assert!(elapsed < within, "{mode} took {elapsed:?}");

        // The same plugin instance serves its next event, and so does every other plugin.
        let (next, _) = deliver(&hostile, "ok").await;
        assert_eq!(
            next.expect("next event to the same plugin").location,
            "ok:ok"
        );
        let (other, _) = deliver(&bystander, "anything").await;
        assert!(other.is_ok(), "{mode}: bystander failed: {other:?}");
    }
}

#[tokio::test]
async fn the_cpu_limit_stops_a_loop_near_its_budget() {
    let host = host();
    let limits = opsync::plugin::Limits {
        cpu: Duration::from_millis(100),
        ..tight_limits()
    };
    let plugin = host
        .load(guest_spec(
            "looper",
            &[("mode", "loop")],
            limits,
            Grants::default(),
        ))
        .expect("loads");
    let started = Instant::now();
    let err = plugin
        .deliver(&event(item("x"), ChangeKind::Created))
        .await
        .expect_err("stopped");
    let elapsed = started.elapsed();
    assert!(matches!(err, PluginError::CpuLimit { .. }), "{err}");
    assert!(
        elapsed >= Duration::from_millis(80) && elapsed < Duration::from_secs(3),
        "stopped after {elapsed:?}"
    );
}

#[tokio::test]
async fn no_state_survives_from_one_call_to_the_next() {
    let host = host();
    let plugin = host
        .load(guest_spec(
            "counter",
            &[("mode", "ok")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    for _ in 0..3 {
        let receipt = plugin
            .deliver(&event(item("x"), ChangeKind::Created))
            .await
            .expect("ok");
        // The guest counts calls in a static: a fresh store per call always starts at zero.
        assert_eq!(receipt.destination_version.as_deref(), Some("1"));
    }
}

#[tokio::test]
async fn revealed_values_are_redacted_from_plugin_errors() {
    let host = host();
    let plugin = host
        .load(guest_spec(
            "leaky",
            &[("mode", "reveal-and-leak")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let err = plugin
        .deliver(&event(item("x"), ChangeKind::Updated))
        .await
        .expect_err("the guest fails on purpose");
    let text = err.to_string();
    assert!(
        matches!(&err, PluginError::Failed { failure, .. } if failure.kind == FailureKind::Permanent)
    );
    assert!(!text.contains("alice"), "{text}");
    assert!(text.contains(REDACTED), "{text}");
    assert!(format!("{err:?}").contains(REDACTED));
}

#[tokio::test]
async fn the_event_reaches_the_plugin_whole_and_deletions_carry_no_values() {
    let host = host();
    let plugin = host
        .load(guest_spec(
            "echo",
            &[("mode", "echo"), ("extra", "1")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let receipt = plugin
        .deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("echo");
    assert_eq!(
        receipt.location,
        "updated|route-a:itm0000000000000000000000a:3:updated|Prod|db|LOGIN|v3|prod|\
         username:CONCEALED:Credentials:5,password:CONCEALED::14|extra,mode"
    );
    let receipt = plugin
        .deliver(&event(item("db"), ChangeKind::Deleted))
        .await
        .expect("echo");
    assert!(
        receipt.location.starts_with("deleted|"),
        "{}",
        receipt.location
    );
    assert!(
        receipt.location.contains("|prod||extra,mode"),
        "{}",
        receipt.location
    );
}

#[tokio::test]
async fn a_plugin_that_fails_validation_says_so() {
    let host = host();
    let plugin = host
        .load(guest_spec("unset", &[], tight_limits(), Grants::default()))
        .expect("loads");
    let err = plugin.validate().await.expect_err("mode missing");
    assert_eq!(err.kind(), FailureKind::Misconfigured);
    assert!(err.to_string().contains("plugin `unset`"));
    let ok = host
        .load(guest_spec(
            "set",
            &[("mode", "ok")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    ok.validate().await.expect("valid");
}
