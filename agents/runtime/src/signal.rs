//! Ctrl-C and SIGTERM as a flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set when the process is asked to stop; the loop checkpoints and exits cleanly.
#[derive(Clone, Debug)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Installs the handler (once per process; later calls share the first flag's fate and
    /// simply return a flag that is never set by a signal).
    pub fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        // A second install (e.g. in tests) fails harmlessly: the first handler stays.
        let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
        Self(flag)
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
