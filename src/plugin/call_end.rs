//! The end of a plugin call: what the plugin printed forwarded, its receipt's text made safe,
//! and what stopped it named (its own error, a trap, or the limit it ran into), then counted and
//! timed in the metrics.

use std::time::Instant;

use wasmtime::{Store, Trap};

use crate::plugin::abi::Outcome;
use crate::plugin::error::{Failure, PluginError};
use crate::plugin::event::{Found, Receipt};
use crate::plugin::limits::{ERROR_MESSAGE_MAX, LimitHit, Limits, RECEIPT_TEXT_MAX};
use crate::plugin::secrets::Secrets;
use crate::plugin::state::HostState;
use crate::plugin::text::sanitize;

/// Ends a call: forwards what the plugin printed, and names what went wrong, if anything.
pub(crate) fn settle<T>(
    plugin: &str,
    limits: &Limits,
    store: &mut Store<HostState>,
    result: Result<wasmtime::Result<Result<T, Failure>>, tokio::time::error::Elapsed>,
) -> Result<T, PluginError> {
    let plugin = plugin.to_string();
    let state = store.data_mut();
    state.finish();
    match result {
        Err(_) => Err(PluginError::Timeout {
            plugin,
            limit: limits.wall_clock,
        }),
        Ok(Err(trap)) => Err(classify(&plugin, limits, state, &trap)),
        Ok(Ok(Err(failure))) => Err(PluginError::Failed {
            plugin,
            failure: sanitize_failure(&state.secrets, failure),
        }),
        Ok(Ok(Ok(outcome))) => Ok(outcome),
    }
}

/// Ends a call that answers with an outcome: [`settle`], then every string the plugin supplied
/// in it made safe to store and print (a receipt's text reaches the ledger, `status` and
/// `deadletter list`).
pub(crate) fn settle_outcome(
    plugin: &str,
    limits: &Limits,
    store: &mut Store<HostState>,
    result: Result<wasmtime::Result<Result<Outcome, Failure>>, tokio::time::error::Elapsed>,
) -> Result<Outcome, PluginError> {
    let outcome = settle(plugin, limits, store, result)?;
    Ok(sanitize_outcome(plugin, store.data(), outcome))
}

fn sanitize_outcome(plugin: &str, state: &HostState, outcome: Outcome) -> Outcome {
    let secrets = &state.secrets;
    match outcome {
        Outcome::Receipt(receipt) => Outcome::Receipt(sanitize_receipt(state, receipt)),
        Outcome::Receipts(results) => Outcome::Receipts(
            results
                .into_iter()
                .map(|r| {
                    r.map(|receipt| sanitize_receipt(state, receipt))
                        .map_err(|f| sanitize_failure(secrets, f))
                })
                .collect(),
        ),
        // Only a digest this call made may stand for what the destination holds.
        Outcome::Found(Found::Present(fingerprint)) if !state.issued_digest(&fingerprint) => {
            tracing::warn!(
                plugin,
                "read-back answered a fingerprint the host did not make; taken as unsupported"
            );
            Outcome::Found(Found::Unsupported)
        }
        other => other,
    }
}

/// A receipt's text made safe; a fingerprint the host did not compute in this call is dropped
/// (only keyed digests may reach the state database).
fn sanitize_receipt(state: &HostState, receipt: Receipt) -> Receipt {
    let secrets = &state.secrets;
    Receipt {
        location: sanitize(secrets, &receipt.location, RECEIPT_TEXT_MAX),
        destination_version: receipt
            .destination_version
            .map(|v| sanitize(secrets, &v, RECEIPT_TEXT_MAX)),
        unchanged: receipt.unchanged,
        fingerprint: receipt.fingerprint.filter(|f| state.issued_digest(f)),
    }
}

fn sanitize_failure(secrets: &Secrets, failure: Failure) -> Failure {
    Failure {
        message: sanitize(secrets, &failure.message, ERROR_MESSAGE_MAX),
        ..failure
    }
}

/// Names what stopped a call that trapped.
fn classify(
    plugin: &str,
    limits: &Limits,
    state: &HostState,
    err: &wasmtime::Error,
) -> PluginError {
    let plugin = plugin.to_string();
    if state.cpu_exhausted {
        return PluginError::CpuLimit {
            plugin,
            limit: limits.cpu,
        };
    }
    if let Some(LimitHit::Memory { .. }) = state.limiter.hit {
        return PluginError::MemoryLimit {
            plugin,
            limit: limits.memory_bytes,
        };
    }
    if state.secrets.over_limit {
        return PluginError::SecretLimit {
            plugin,
            max_count: limits.secrets_per_call,
            max_bytes: limits.secret_bytes_per_call,
        };
    }
    if state.dir_quota_hit() {
        return PluginError::WriteQuota {
            plugin,
            limit: limits.dir_write_bytes_per_call,
        };
    }
    if state.log.flooded {
        return PluginError::LogFlood {
            plugin,
            limit: limits.log_bytes_per_call,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => PluginError::StackOverflow { plugin },
        Some(Trap::Interrupt) => PluginError::CpuLimit {
            plugin,
            limit: limits.cpu,
        },
        _ => {
            // The root cause says what happened ("out of bounds memory access"); the whole chain
            // with its wasm backtrace goes to the debug log.
            let chain = format!("{err:?}");
            let full = state.secrets.redact(&chain);
            tracing::debug!(plugin = %plugin, trap = %full, "plugin trapped");
            let message = err.root_cause().to_string();
            let message = sanitize(&state.secrets, &message, ERROR_MESSAGE_MAX);
            PluginError::Trap { plugin, message }
        }
    }
}

pub(crate) fn record(
    plugin: &str,
    call: &'static str,
    started: Instant,
    outcome: &Result<Outcome, PluginError>,
) {
    let result = match outcome {
        Ok(_) => "ok",
        Err(PluginError::Failed { failure, .. }) => failure.kind.as_str(),
        Err(PluginError::Timeout { .. }) => "timeout",
        Err(PluginError::CpuLimit { .. }) => "cpu_limit",
        Err(PluginError::MemoryLimit { .. }) => "memory_limit",
        Err(PluginError::StackOverflow { .. }) => "stack_overflow",
        Err(PluginError::LogFlood { .. }) => "log_flood",
        Err(PluginError::SecretLimit { .. }) => "secret_limit",
        Err(PluginError::WriteQuota { .. }) => "write_quota",
        Err(_) => "trap",
    };
    metrics::counter!(
        "opsync_plugin_calls_total",
        "plugin" => plugin.to_string(),
        "call" => call,
        "result" => result,
    )
    .increment(1);
    metrics::histogram!(
        "opsync_plugin_call_duration_seconds",
        "plugin" => plugin.to_string(),
        "call" => call,
    )
    .record(started.elapsed().as_secs_f64());
    if let Err(e) = outcome {
        tracing::warn!(plugin, call, result, error = %e, "plugin call failed");
    }
}
