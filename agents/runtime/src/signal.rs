//! SIGINT (Ctrl-C) and SIGTERM as a flag the loop polls, remembering which signal came, so the
//! process can checkpoint, flush and exit as a shell expects (128 + the signal: 130 or 143).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The last stop signal received (0: none). A handler may only touch an atomic.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Set when the process is asked to stop; the loop checkpoints and exits cleanly.
#[derive(Clone, Copy, Debug)]
pub struct StopSignal(());

impl StopSignal {
    /// Installs the handlers for SIGINT and SIGTERM (once per process).
    pub fn install() -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let action = SigAction::new(
                SigHandler::Handler(on_signal),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            for signal in [Signal::SIGINT, Signal::SIGTERM] {
                // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
                let _ = unsafe { sigaction(signal, &action) };
            }
        });
        Self(())
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        RECEIVED.load(Ordering::SeqCst) != 0
    }

    /// The signal that asked for the stop (2 for SIGINT, 15 for SIGTERM), if one came.
    pub fn signal(&self) -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}
