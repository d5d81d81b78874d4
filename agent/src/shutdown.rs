//! A cloneable "stop now" signal for the daemon's tasks.

use tokio::sync::watch;

#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown was triggered (or its trigger dropped, which means the same).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, i.e. nobody can keep us running any more.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
