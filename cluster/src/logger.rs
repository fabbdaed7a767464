//! The roles' log: one line per record on standard error, `RUST_LOG`-style level from
//! `EVTXSQL_LOG` (error, warn, info, debug, trace; default info for evtxsql and Ballista,
//! warn for everything else).

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl StderrLogger {
    fn wanted(&self, target: &str, level: Level) -> bool {
        let ours = target.starts_with("ballista") || target.starts_with("evtxsql");
        let limit = if ours {
            self.level
        } else {
            self.level.min(LevelFilter::Warn)
        };
        level <= limit
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.wanted(metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record) {
        if !self.wanted(record.target(), record.level()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut err = std::io::stderr().lock();
        // A closed stderr must not stop the role.
        let _ = writeln!(
            err,
            "{now:.3} {:<5} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Install the logger (once per process; later calls do nothing).
pub fn init() {
    let level = std::env::var("EVTXSQL_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
