//! Per-plugin limits (memory, CPU, wall clock, host allocations, logs, HTTP) and the store's
//! resource limiter that enforces the memory and table caps.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// What one call into a plugin may use. Every field has a safe default; config may override them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, in bytes (all its memories together).
    pub memory_bytes: usize,
    /// Table elements of one instance.
    pub table_elements: usize,
    /// CPU time the guest may spend running WebAssembly in one call, in epoch ticks of the host.
    pub cpu: Duration,
    /// Wall-clock time of one call, host calls (HTTP) included.
    pub wall_clock: Duration,
    /// Bytes the guest may hand the host in one host call (strings, lists).
    pub hostcall_fuel: usize,
    /// Live host resources (secret handles, HTTP bodies, streams) at once.
    pub resource_table: usize,
    /// Bytes of log output kept per call; lines past it are dropped and counted.
    pub log_bytes_per_call: usize,
    /// Log lines kept per call.
    pub log_lines_per_call: usize,
    /// HTTP requests per call.
    pub http_requests_per_call: u32,
    /// Size of one HTTP request body.
    pub http_request_body_bytes: u64,
    /// Size of one HTTP response body.
    pub http_response_body_bytes: u64,
    /// Longest wait for a TCP (and TLS) connection.
    pub http_connect_timeout: Duration,
    /// Longest wait for the first byte of a response, and between two chunks of it.
    pub http_read_timeout: Duration,
    /// Bytes of values the plugin may pass to the `secret` constructor in one call (the host
    /// keeps each one to redact it from the plugin's output).
    pub secret_bytes_per_call: usize,
    /// Values the plugin may pass to the `secret` constructor in one call.
    pub secrets_per_call: usize,
    /// Bytes the plugin may write into its granted directories in one call.
    pub dir_write_bytes_per_call: u64,
}

/// A plugin that keeps logging after its budget is spent is stopped once it has tried to write
/// this many times its byte or line budget.
pub const LOG_FLOOD_FACTOR: usize = 4;

/// A batch call gets at most this many times one call's CPU and wall clock.
pub const BATCH_TIME_FACTOR: usize = 4;

/// Longest log message kept; the rest is cut.
pub const LOG_MESSAGE_MAX: usize = 4096;

/// Longest error message kept from a plugin; the rest is cut.
pub const ERROR_MESSAGE_MAX: usize = 4096;

/// Longest name a plugin may give a secret it makes; the rest is cut.
pub const SECRET_NAME_MAX: usize = 256;

/// Longest text kept from a receipt's field (location, destination version).
pub const RECEIPT_TEXT_MAX: usize = 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            cpu: Duration::from_secs(5),
            wall_clock: Duration::from_secs(30),
            hostcall_fuel: 1 << 20,
            resource_table: 1024,
            log_bytes_per_call: 64 << 10,
            log_lines_per_call: 1000,
            http_requests_per_call: 16,
            http_request_body_bytes: 1 << 20,
            http_response_body_bytes: 1 << 20,
            http_connect_timeout: Duration::from_secs(5),
            http_read_timeout: Duration::from_secs(10),
            secret_bytes_per_call: 1 << 20,
            secrets_per_call: 1000,
            dir_write_bytes_per_call: 64 << 20,
        }
    }
}

/// Why a set of limits cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("memory limit of {limit} bytes is above the host's pool slot of {pool} bytes")]
    MemoryAbovePool { limit: usize, pool: usize },
    #[error("`{0}` must be greater than zero")]
    Zero(&'static str),
}

impl Limits {
    /// Checks the limits against the engine's pool.
    pub fn validate(&self, pool_memory_bytes: usize) -> Result<(), LimitsError> {
        if self.memory_bytes > pool_memory_bytes {
            return Err(LimitsError::MemoryAbovePool {
                limit: self.memory_bytes,
                pool: pool_memory_bytes,
            });
        }
        let zero = [
            ("memory_bytes", self.memory_bytes == 0),
            ("cpu", self.cpu.is_zero()),
            ("wall_clock", self.wall_clock.is_zero()),
            ("hostcall_fuel", self.hostcall_fuel == 0),
            ("resource_table", self.resource_table == 0),
            ("secret_bytes_per_call", self.secret_bytes_per_call == 0),
            ("secrets_per_call", self.secrets_per_call == 0),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => Err(LimitsError::Zero(name)),
            None => Ok(()),
        }
    }

    /// The CPU budget in epoch ticks of `tick` each (at least one).
    /// The limits of one call that delivers `events` changes: what the events could have used
    /// one call each, summed (requests, log, writes, handles, made secrets, host-call fuel), and
    /// at most [`BATCH_TIME_FACTOR`] times the CPU and wall clock, so a stuck batch is still
    /// stopped soon. One event: the limits as they are.
    pub fn for_batch(&self, events: usize) -> Limits {
        let n = events.max(1);
        let time = u32::try_from(n.min(BATCH_TIME_FACTOR)).unwrap_or(1);
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let n64 = n as u64;
        Limits {
            cpu: self.cpu.saturating_mul(time),
            wall_clock: self.wall_clock.saturating_mul(time),
            hostcall_fuel: self.hostcall_fuel.saturating_mul(n),
            resource_table: self.resource_table.saturating_mul(n),
            log_bytes_per_call: self.log_bytes_per_call.saturating_mul(n),
            log_lines_per_call: self.log_lines_per_call.saturating_mul(n),
            http_requests_per_call: self.http_requests_per_call.saturating_mul(n32),
            secret_bytes_per_call: self.secret_bytes_per_call.saturating_mul(n),
            secrets_per_call: self.secrets_per_call.saturating_mul(n),
            dir_write_bytes_per_call: self.dir_write_bytes_per_call.saturating_mul(n64),
            ..self.clone()
        }
    }

    pub fn cpu_ticks(&self, tick: Duration) -> u64 {
        let ticks = self.cpu.as_nanos() / tick.as_nanos().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Enforces the memory and table caps of one store and remembers whether the guest hit one, so
/// the resulting trap can be reported as a memory limit rather than a bare trap.
#[derive(Debug)]
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    /// Set when a growth was refused.
    pub hit: Option<LimitHit>,
}

/// Which cap a guest ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    Memory { desired: usize },
    Table { desired: usize },
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            hit: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = Some(LimitHit::Memory { desired });
            return Err(wasmtime::Error::msg(format!(
                "memory limit: growing to {desired} bytes, above the limit of {}",
                self.memory_bytes
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.hit = Some(LimitHit::Table { desired });
            return Err(wasmtime::Error::msg(format!(
                "table limit: growing to {desired} elements, above the limit of {}",
                self.table_elements
            )));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sums_its_events_budgets_and_caps_its_time() {
        let one = Limits::default();
        assert_eq!(one.for_batch(1), one);
        assert_eq!(one.for_batch(0), one);
        let batch = one.for_batch(32);
        assert_eq!(
            batch.http_requests_per_call,
            one.http_requests_per_call * 32
        );
        assert_eq!(batch.log_bytes_per_call, one.log_bytes_per_call * 32);
        assert_eq!(
            batch.dir_write_bytes_per_call,
            one.dir_write_bytes_per_call * 32
        );
        assert_eq!(batch.resource_table, one.resource_table * 32);
        assert_eq!(batch.wall_clock, one.wall_clock * BATCH_TIME_FACTOR as u32);
        assert_eq!(batch.cpu, one.cpu * BATCH_TIME_FACTOR as u32);
        assert_eq!(batch.memory_bytes, one.memory_bytes, "memory is not scaled");
        assert_eq!(one.for_batch(2).wall_clock, one.wall_clock * 2);
    }

    #[test]
    fn defaults_are_valid_for_a_pool_that_fits_them() {
        let limits = Limits::default();
        assert_eq!(limits.validate(64 << 20), Ok(()));
        assert_eq!(
            limits.validate(32 << 20),
            Err(LimitsError::MemoryAbovePool {
                limit: 64 << 20,
                pool: 32 << 20
            })
        );
    }

    #[test]
    fn a_zero_limit_is_refused() {
        let limits = Limits {
            cpu: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(limits.validate(1 << 30), Err(LimitsError::Zero("cpu")));
    }

    #[test]
    fn cpu_ticks_round_down_but_never_to_zero() {
        let limits = Limits {
            cpu: Duration::from_millis(55),
            ..Limits::default()
        };
        assert_eq!(limits.cpu_ticks(Duration::from_millis(10)), 5);
        assert_eq!(limits.cpu_ticks(Duration::from_secs(1)), 1);
    }

    #[test]
    fn the_limiter_refuses_growth_past_the_cap_and_remembers_it() {
        let mut limiter = Limiter::new(&Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        });
        assert!(limiter.memory_growing(0, 1 << 20, None).is_ok());
        assert!(limiter.hit.is_none());
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert_eq!(limiter.hit, Some(LimitHit::Memory { desired: 2 << 20 }));
    }
}
