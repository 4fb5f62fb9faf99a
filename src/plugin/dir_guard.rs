//! Granted directories, guarded: symbolic links are refused (a link's target can point out of
//! the grant, for the host and other tools to follow), and every byte a plugin writes into a file
//! counts against its per-call write quota.
//!
//! Written by hand because wasmtime-wasi has no hook for either: the host shadows four functions
//! of `wasi:filesystem/types` in the linker (`symlink-at`, `write`, `write-via-stream`,
//! `append-via-stream`), and wraps the file streams it hands out in a counting stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor};
use wasmtime_wasi::p2::{DynOutputStream, FsError, OutputStream, Pollable, StreamError};

use crate::plugin::state::HostState;

/// The interface whose functions are shadowed; components importing any 0.2.x resolve to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Bytes a plugin may still write into its granted directories in this call.
#[derive(Debug)]
pub struct WriteQuota {
    limit: u64,
    written: AtomicU64,
    hit: AtomicBool,
}

impl WriteQuota {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            written: AtomicU64::new(0),
            hit: AtomicBool::new(false),
        })
    }

    /// Takes `len` bytes from the quota; past it, remembers the hit and refuses.
    fn take(&self, len: usize) -> Result<(), QuotaSpent> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        let before = self.written.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > self.limit {
            self.hit.store(true, Ordering::Relaxed);
            return Err(QuotaSpent { limit: self.limit });
        }
        Ok(())
    }

    /// Whether the plugin tried to write past the quota in this call.
    pub fn hit(&self) -> bool {
        self.hit.load(Ordering::Relaxed)
    }
}

/// A write past the quota; it stops the call.
#[derive(Debug, thiserror::Error)]
#[error("write quota: the plugin wrote more than {limit} bytes into its granted directories")]
pub struct QuotaSpent {
    limit: u64,
}

/// Shadows the guarded functions of `wasi:filesystem/types` in `linker` (which already holds
/// wasmtime-wasi's own).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |_store, (_fd, _target, _link): (Resource<Descriptor>, String, String)| {
            Box::new(async { Ok((Err::<(), _>(ErrorCode::NotPermitted),)) })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let quota = store.data().dir_quota.clone();
                if let Err(spent) = quota.take(buf.len()) {
                    return Err(spent.into());
                }
                let result = store.data_mut().filesystem().write(fd, buf, offset).await;
                Ok((fs_result(result)?,))
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            let state = store.data_mut();
            let stream = state.filesystem().write_via_stream(fd, offset);
            Ok((counted(state, stream)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            let state = store.data_mut();
            let stream = state.filesystem().append_via_stream(fd);
            Ok((counted(state, stream)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's own stream, put back in the table behind a counting one.
fn counted(
    state: &mut HostState,
    stream: Result<Resource<DynOutputStream>, FsError>,
) -> wasmtime::Result<Result<Resource<DynOutputStream>, ErrorCode>> {
    let stream = match fs_result(stream)? {
        Ok(stream) => stream,
        Err(code) => return Ok(Err(code)),
    };
    let inner = state.table.delete(stream)?;
    let counting: DynOutputStream = Box::new(Counting {
        inner,
        quota: state.dir_quota.clone(),
    });
    Ok(Ok(state.table.push(counting)?))
}

/// A filesystem result as the guest sees it: an error code, or a trap.
fn fs_result<T>(result: Result<T, FsError>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => Ok(Err(e.downcast()?)),
    }
}

/// A file stream that takes every byte written from the call's quota.
struct Counting {
    inner: DynOutputStream,
    quota: Arc<WriteQuota>,
}

impl Counting {
    fn take(&self, len: usize) -> Result<(), StreamError> {
        self.quota
            .take(len)
            .map_err(|spent| StreamError::Trap(spent.into()))
    }
}

#[async_trait]
impl Pollable for Counting {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl OutputStream for Counting {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.take(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.take(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.inner.check_write()
    }

    async fn write_ready(&mut self) -> Result<usize, StreamError> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_refuses_the_write_that_passes_it_and_remembers() {
        let quota = WriteQuota::new(10);
        assert!(quota.take(6).is_ok());
        assert!(quota.take(4).is_ok());
        assert!(!quota.hit());
        assert!(quota.take(1).is_err());
        assert!(quota.hit());
    }
}
