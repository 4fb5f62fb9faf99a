//! The rollout restart after a batch that changed Secrets, and its failure on their events.

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::{PluginError, Receipt, Retry, message, misconfigured, permanent};

use crate::Context;

/// After a batch: restarts each workload of `restart` once when an event changed a Secret
/// (`restarts[i]` set), and fails those events with the restart's error if one failed, so that
/// their retry restarts again.
pub(crate) fn restart_workloads(
    ctx: &Context,
    results: &mut [Result<Receipt, PluginError>],
    restarts: &[Option<&'static str>],
) {
    let workloads = &ctx.settings.restart;
    if workloads.is_empty() || restarts.iter().all(Option::is_none) {
        return;
    }
    let at = Instant::now().rfc3339();
    let mut failures = Vec::new();
    for workload in workloads {
        match ctx.api.restart(workload, &at) {
            Ok(()) => log(
                Level::Info,
                &format!(
                    "restarted {workload} in namespace {}",
                    ctx.settings.namespace
                ),
            ),
            Err(error) => failures.push(error),
        }
    }
    let Some(error) = combine(&failures) else {
        return;
    };
    for (result, why) in results.iter_mut().zip(restarts) {
        if let (Ok(receipt), Some(why)) = (&*result, why) {
            let text = format!(
                "Secret {} {why}, but not every workload was restarted: {}",
                receipt.location,
                message(&error)
            );
            *result = Err(restate(&error, text));
        }
    }
}

/// The errors of several restarts as one: their messages joined, and the gravest kind, so a
/// refusal that a retry cannot fix is not retried (each retry would restart the others again).
/// Retryable only when all are, with the longest retry hint.
fn combine(errors: &[PluginError]) -> Option<PluginError> {
    let text = errors.iter().map(message).collect::<Vec<_>>().join("; ");
    if errors.is_empty() {
        None
    } else if errors
        .iter()
        .any(|e| matches!(e, PluginError::Misconfigured(_)))
    {
        Some(misconfigured(text))
    } else if errors
        .iter()
        .any(|e| matches!(e, PluginError::Permanent(_)))
    {
        Some(permanent(text))
    } else {
        let after_ms = errors
            .iter()
            .filter_map(|e| match e {
                PluginError::Retryable(r) => r.after_ms,
                _ => None,
            })
            .max();
        Some(PluginError::Retryable(Retry {
            message: text,
            after_ms,
        }))
    }
}

/// `error` with its message replaced by `text`, its kind and retry hint kept.
fn restate(error: &PluginError, text: String) -> PluginError {
    match error {
        PluginError::Retryable(r) => PluginError::Retryable(Retry {
            message: text,
            after_ms: r.after_ms,
        }),
        PluginError::Permanent(_) => PluginError::Permanent(text),
        PluginError::Misconfigured(_) => PluginError::Misconfigured(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_failures_combine_to_the_gravest_kind() {
        let retry = |ms| {
            PluginError::Retryable(Retry {
                message: format!("busy {ms:?}"),
                after_ms: ms,
            })
        };
        assert!(combine(&[]).is_none());
        assert!(matches!(
            combine(&[retry(Some(2000)), retry(None), retry(Some(5000))]),
            Some(PluginError::Retryable(Retry { after_ms: Some(5000), message }))
                if message == "busy Some(2000); busy None; busy Some(5000)"
        ));
        assert!(matches!(
            combine(&[retry(None), permanent("gone")]),
            Some(PluginError::Permanent(m)) if m == "busy None; gone"
        ));
        assert!(matches!(
            combine(&[permanent("gone"), misconfigured("denied")]),
            Some(PluginError::Misconfigured(_))
        ));
        assert!(matches!(
            restate(&retry(Some(1000)), "again".into()),
            PluginError::Retryable(Retry { message, after_ms: Some(1000) }) if message == "again"
        ));
    }
}
