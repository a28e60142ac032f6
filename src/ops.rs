//! What the HTTP port (src/web) serves for the other modules: the
//! readiness flags `/readyz` answers from. The probes must never block or
//! share state with the gRPC path beyond the `Readiness` flags. (Another
//! module's HTTP door is a `tower::Service`, `web::HttpDoor`.)

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Whether the process should receive traffic.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The database answered the latest ping.
    db_up: AtomicBool,
    /// Shutdown has begun.
    stopping: AtomicBool,
    /// The Redis buffer: 0 not used, 1 answering, 2 not answering.
    buffer: AtomicU8,
}

impl Readiness {
    /// Records the latest database ping.
    pub fn set_db_up(&self, up: bool) {
        self.db_up.store(up, Ordering::Relaxed);
        metrics::gauge!("pulsyon_database_up").set(if up { 1.0 } else { 0.0 });
    }

    /// Records that shutdown has begun; never undone.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Records whether the Redis buffer answered its latest command.
    pub fn set_buffer_up(&self, up: bool) {
        self.buffer.store(if up { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Whether what the process depends on besides the database (the Redis
    /// buffer, when used) answers.
    pub fn dependencies_up(&self) -> bool {
        self.buffer.load(Ordering::Relaxed) != 2
    }

    /// Ready for traffic.
    pub fn is_ready(&self) -> bool {
        self.db_up.load(Ordering::Relaxed)
            && self.dependencies_up()
            && !self.stopping.load(Ordering::Relaxed)
    }
}
