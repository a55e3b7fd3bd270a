//! A progress bar for training (drawn only when stderr is a terminal) and Ctrl-C handling: the
//! first Ctrl-C asks the training loop to stop after the current update, so the run still writes
//! what it has; a second one exits at once.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the Ctrl-C handler (once per process; later calls and failures are ignored: the run
/// then simply cannot be interrupted gracefully).
pub fn install_ctrlc() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
}

/// Whether Ctrl-C was pressed (once).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Progress of a training run over `iters` updates.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(iters: usize) -> Self {
        install_ctrlc();
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(iters as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} updates  {per_sec}  eta {eta}  (Ctrl-C stops and keeps the run)",
            )
            .expect("a valid progress template"),
        );
        Progress { bar }
    }

    /// The training loop's `keep_going(k)`: record progress; `false` once Ctrl-C was pressed.
    pub fn keep_going(&self, k: usize) -> bool {
        self.bar.set_position(k as u64);
        !INTERRUPTED.load(Ordering::SeqCst)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
