//! A plugin's stdout and stderr: what it prints is kept up to a cap per call and forwarded as log
//! lines; past the cap, output is dropped and counted, never an error, so a chatty plugin is not
//! stopped for printing (the log interface drops past its budget the same way).
//!
//! Written by hand because wasmtime-wasi's in-memory pipe fails the write past its capacity,
//! which traps a plugin whose language runtime treats a failed print as fatal.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Bytes the guest may offer in one write: any amount is accepted (and perhaps dropped).
const WRITE_PERMIT: usize = 64 << 10;

/// One stream's output of one call, capped.
#[derive(Clone, Debug)]
pub struct CappedOutput {
    cap: usize,
    kept: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            kept: Arc::default(),
        }
    }

    /// What was kept, and how many bytes were dropped past the cap.
    pub fn contents(&self) -> (Vec<u8>, u64) {
        let kept = self.lock();
        (kept.bytes.clone(), kept.dropped)
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keep(&self, bytes: &[u8]) {
        let mut kept = self.lock();
        let room = self.cap.saturating_sub(kept.bytes.len());
        let take = room.min(bytes.len());
        kept.bytes.extend_from_slice(&bytes[..take]);
        kept.dropped += (bytes.len() - take) as u64;
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

#[async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_dropped_and_counted_never_refused() {
        let mut out = CappedOutput::new(8);
        assert!(out.write(Bytes::from_static(b"hello ")).is_ok());
        assert!(out.write(Bytes::from_static(b"world")).is_ok());
        assert!(out.check_write().is_ok_and(|n| n > 0));
        assert_eq!(out.contents(), (b"hello wo".to_vec(), 3));
    }
}
