//! Locating the fixtures, and the one rule for when their absence fails a test.

use std::path::{Path, PathBuf};

/// A fixture that CI must provide, named by the environment variable that requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The real-EVTX corpus: `EVTXSQL_REQUIRE_CORPUS`.
    Corpus,
    /// Headless Chromium: `EVTXSQL_REQUIRE_BROWSER`.
    Browser,
    /// An S3-compatible server to start (moto's `moto_server`): `EVTXSQL_REQUIRE_S3`.
    S3,
}

impl Requirement {
    /// The environment variable that makes this fixture mandatory.
    pub fn variable(self) -> &'static str {
        match self {
            Requirement::Corpus => "EVTXSQL_REQUIRE_CORPUS",
            Requirement::Browser => "EVTXSQL_REQUIRE_BROWSER",
            Requirement::S3 => "EVTXSQL_REQUIRE_S3",
        }
    }
}

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !(v.is_empty() || v == "0" || v == "false" || v == "no")
    })
}

/// Whether a missing `what` fails the test: its own variable is set, or `CI` is.
pub fn required(what: Requirement) -> bool {
    truthy(std::env::var(what.variable()).ok()) || truthy(std::env::var("CI").ok())
}

/// A missing fixture: a failure under CI, else a `SKIPPED:` note and `None`.
fn missing<T>(what: Requirement, message: &str) -> Option<T> {
    if required(what) {
        panic!(
            "{message}; required because {} or CI is set",
            what.variable()
        );
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// The workspace root (this crate sits directly under it).
fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The shared real-EVTX corpus: `$EVTXSQL_CORPUS`, else `../shared/evtx` beside the workspace.
/// It must hold `expected.json` (the counts the conformance tests compare with).
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("EVTXSQL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/evtx"));
    if dir.join("expected.json").is_file() {
        return Some(dir);
    }
    missing(
        Requirement::Corpus,
        &format!(
            "real EVTX corpus not found at {} (no expected.json there; set EVTXSQL_CORPUS)",
            dir.display()
        ),
    )
}

/// Headless Chromium: `$EVTXSQL_CHROMIUM`, else `/usr/bin/chromium`.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("EVTXSQL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    missing(
        Requirement::Browser,
        &format!(
            "Chromium not found at {} (apt-get install chromium, or set EVTXSQL_CHROMIUM)",
            path.display()
        ),
    )
}

/// moto's S3 server (`pip install 'moto[server]'`): `$EVTXSQL_MOTO_SERVER`, else
/// `moto_server` on `PATH`.
pub fn moto_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EVTXSQL_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    missing(
        Requirement::S3,
        "moto_server not found on PATH (pip install 'moto[server]', or set EVTXSQL_MOTO_SERVER)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_values_require() {
        for v in ["1", "true", "TRUE", "yes"] {
            assert!(truthy(Some(v.into())), "{v}");
        }
        for v in ["", "0", "false", "No"] {
            assert!(!truthy(Some(v.into())), "{v}");
        }
        assert!(!truthy(None));
    }
}
