//! Turning the user's inputs (files, directories, globs) into the list of EVTX files to read.
//! A file is EVTX when it starts with the `ElfFile\0` signature, whatever its name.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::IngestError;

pub const EVTX_SIGNATURE: &[u8; 8] = b"ElfFile\0";

/// One input file found.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub size: u64,
    /// None when the file carries the EVTX signature; otherwise why it is not readable as EVTX.
    /// Only files named `*.evtx` (or named explicitly) are kept with a problem.
    pub problem: Option<String>,
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Candidates sorted by path, without duplicates.
    pub candidates: Vec<Candidate>,
    /// Inputs that matched nothing or could not be read, each naming its path.
    pub problems: Vec<IngestError>,
    /// Files in the directories walked that are neither EVTX nor named `.evtx`.
    pub ignored: u64,
}

impl Discovery {
    /// The EVTX files found (those without a problem).
    pub fn files(&self) -> Vec<PathBuf> {
        self.candidates
            .iter()
            .filter(|c| c.problem.is_none())
            .map(|c| c.path.clone())
            .collect()
    }
}

/// Expand files, directories (recursively) and glob patterns into EVTX candidates.
pub fn discover(inputs: &[PathBuf]) -> Discovery {
    let mut d = Discovery::default();
    for input in inputs {
        if input.exists() {
            let before = d.candidates.len();
            visit(input, true, &mut d);
            if input.is_dir() && d.candidates.len() == before {
                d.problems.push(IngestError::NoLogs {
                    path: input.clone(),
                });
            }
            continue;
        }
        let pattern = input.to_string_lossy();
        if !pattern.contains(['*', '?', '[']) {
            d.problems.push(IngestError::NoMatch {
                path: input.clone(),
            });
            continue;
        }
        match glob::glob(&pattern) {
            Err(e) => d.problems.push(IngestError::Glob {
                pattern: pattern.into_owned(),
                message: e.to_string(),
            }),
            Ok(paths) => {
                let mut any = false;
                for entry in paths {
                    match entry {
                        Ok(p) => {
                            any = true;
                            visit(&p, true, &mut d);
                        }
                        Err(e) => d.problems.push(IngestError::io(
                            e.path().to_path_buf(),
                            std::io::Error::other(e.to_string()),
                        )),
                    }
                }
                if !any {
                    d.problems.push(IngestError::NoMatch {
                        path: input.clone(),
                    });
                }
            }
        }
    }
    d.candidates.sort_by(|a, b| a.path.cmp(&b.path));
    d.candidates.dedup_by(|a, b| a.path == b.path);
    d
}

fn visit(path: &Path, explicit: bool, d: &mut Discovery) {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            d.problems.push(IngestError::io(path, e));
            return;
        }
    };
    if meta.is_dir() {
        let entries = match fs::read_dir(path) {
            Ok(e) => e,
            Err(e) => {
                d.problems.push(IngestError::io(path, e));
                return;
            }
        };
        for entry in entries {
            match entry {
                Ok(e) => {
                    // Do not follow symlinked directories (loops); symlinked files are fine.
                    let is_link_dir =
                        e.file_type().map(|t| t.is_symlink()).unwrap_or(false) && e.path().is_dir();
                    if !is_link_dir {
                        visit(&e.path(), false, d);
                    }
                }
                Err(e) => d.problems.push(IngestError::io(path, e)),
            }
        }
        return;
    }
    if !meta.is_file() {
        return;
    }
    let named_evtx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("evtx"));
    match has_signature(path) {
        Ok(true) => d.candidates.push(Candidate {
            path: path.to_path_buf(),
            size: meta.len(),
            problem: None,
        }),
        Ok(false) if named_evtx || explicit => {
            let why = if meta.len() == 0 {
                "empty file (0 bytes), no EVTX header".to_string()
            } else {
                "not an EVTX file (no `ElfFile` signature)".to_string()
            };
            d.candidates.push(Candidate {
                path: path.to_path_buf(),
                size: meta.len(),
                problem: Some(why),
            });
        }
        Ok(false) => d.ignored += 1,
        Err(e) => d.problems.push(IngestError::io(path, e)),
    }
}

fn has_signature(path: &Path) -> std::io::Result<bool> {
    let mut f = fs::File::open(path)?;
    let mut buf = [0u8; 8];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == buf.len() && &buf == EVTX_SIGNATURE)
}
