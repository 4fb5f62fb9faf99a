//! Graceful shutdown: a signal shared by every task, triggered by SIGTERM/SIGINT or by code.

use tokio::sync::watch;

/// Triggers the shutdown that every [`Shutdown`] clone waits for.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A task's view of the shutdown signal. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A new, untriggered shutdown signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Asks every task to stop. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Another view of the same signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }

    /// Triggers on the first SIGTERM or SIGINT; returns the signal's name. Runs until then.
    pub async fn on_signals(&self) -> std::io::Result<&'static str> {
        let name = wait_for_signal().await?;
        tracing::info!(
            signal = name,
            "shutting down: polling stops, in-flight deliveries finish"
        );
        self.trigger();
        Ok(name)
    }
}

impl Shutdown {
    /// Whether shutdown was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is asked for (at once if it already was, or if the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("Ctrl-C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_view_sees_the_trigger() {
        let (trigger, mut a) = channel();
        let mut b = trigger.subscribe();
        assert!(!a.is_triggered());
        let waiter = tokio::spawn(async move {
            b.wait().await;
            b.is_triggered()
        });
        trigger.trigger();
        a.wait().await;
        assert!(a.is_triggered());
        assert!(waiter.await.expect("joined"));
        // Waiting after the fact returns at once.
        a.wait().await;
    }
}
