//! Rule packs: the built-in ones embedded in the binary, and rule directories given at run time.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Result, RulesError};
use crate::rule::{PackFile, Rule, TimelineQuery};

/// What a run uses: rules, and at most one timeline query (the report's daily charts).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub timeline: Option<TimelineQuery>,
}

impl RuleSet {
    /// Add one parsed pack file; a second timeline is an error naming both files.
    pub fn add(&mut self, file: PackFile) -> Result<()> {
        match file {
            PackFile::Rule(r) => self.rules.push(r),
            PackFile::Timeline(t) => {
                if let Some(first) = &self.timeline {
                    return Err(RulesError::DuplicateTimeline {
                        first: first.origin.clone(),
                        second: t.origin,
                    });
                }
                self.timeline = Some(t);
            }
        }
        Ok(())
    }

    /// Add another set (see [`RuleSet::add`]).
    pub fn extend(&mut self, other: RuleSet) -> Result<()> {
        self.rules.extend(other.rules);
        if let Some(t) = other.timeline {
            self.add(PackFile::Timeline(t))?;
        }
        Ok(())
    }
}

/// A built-in pack: its name and its files (file name, text), embedded at compile time: rules,
/// and optionally one timeline query (`-- kind: timeline`).
pub struct BuiltinPack {
    pub name: &'static str,
    pub description: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! pack_files {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../packs/", $dir, "/", $file)))),+]
    };
}

/// Every built-in pack. A test checks that each `.sql` file under `rules/packs/<name>/` is listed.
pub const BUILTIN_PACKS: &[BuiltinPack] = &[BuiltinPack {
    name: "smb-guest",
    description: "SMB insecure guest logons: client rejects/allows, policy changes, fallback, \
                  spoofed servers, server-side guest sessions, dependencies and per-host posture",
    files: pack_files!("smb-guest":
        "client_rejected_guest.sql",
        "client_allowed_guest.sql",
        "insecure_guest_enabled.sql",
        "fallback_to_guest.sql",
        "spoofed_server.sql",
        "server_guest_session.sql",
        "server_guest_denied.sql",
        "guest_blocked_by_signing.sql",
        "guest_dependency.sql",
        "host_posture.sql",
        "timeline.sql",
    ),
}];

/// The default pack of `report` and `scan`.
pub const DEFAULT_PACK: &str = "smb-guest";

/// Names of the built-in packs, comma separated (for messages).
pub fn builtin_names() -> String {
    BUILTIN_PACKS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse the files of a built-in pack.
pub fn builtin_pack(name: &str) -> Result<RuleSet> {
    let pack = BUILTIN_PACKS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| RulesError::UnknownPack {
            name: name.to_string(),
            known: builtin_names(),
        })?;
    let mut set = RuleSet::default();
    for (file, text) in pack.files {
        set.add(PackFile::parse(
            text,
            &format!("builtin:{}/{file}", pack.name),
            pack.name,
        )?)?;
    }
    Ok(set)
}

/// Parse every `*.sql` file directly in `dir` (sorted by file name). All files are read; the
/// first error is returned after the others were tried, with every error in `errors`.
pub fn load_dir(dir: &Path) -> Result<RuleSet> {
    let (set, mut errors) = load_dir_all(dir)?;
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors.remove(0))
    }
}

/// Like [`load_dir`], but returns the files that parsed and every error (for `rules check`).
pub fn load_dir_all(dir: &Path) -> Result<(RuleSet, Vec<RulesError>)> {
    let pack = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".to_string());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| RulesError::io(dir, e))? {
        let entry = entry.map_err(|e| RulesError::io(dir, e))?;
        let path = entry.path();
        if path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
        {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(RulesError::EmptyRuleDir {
            path: dir.to_path_buf(),
        });
    }
    files.sort();
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(RulesError::io(&path, e));
                continue;
            }
        };
        if let Err(e) =
            PackFile::parse(&text, &path.display().to_string(), &pack).and_then(|f| set.add(f))
        {
            errors.push(e);
        }
    }
    Ok((set, errors))
}

/// Build the rule set of a run: the named built-in packs, then every rule directory. Rule ids
/// must be unique across all of them, and at most one of them brings a timeline.
pub fn select(packs: &[String], dirs: &[std::path::PathBuf]) -> Result<RuleSet> {
    let mut set = RuleSet::default();
    for p in packs {
        set.extend(builtin_pack(p)?)?;
    }
    for d in dirs {
        set.extend(load_dir(d)?)?;
    }
    check_unique(&set.rules)?;
    Ok(set)
}

/// Error on the first id defined twice.
pub fn check_unique(rules: &[Rule]) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for r in rules {
        if let Some(first) = seen.insert(&r.id, &r.origin) {
            return Err(RulesError::DuplicateId {
                id: r.id.clone(),
                first: first.to_string(),
                second: r.origin.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pack_parses_and_lists_every_file() {
        let set = builtin_pack("smb-guest").expect("smb-guest parses");
        check_unique(&set.rules).expect("unique ids");
        let timeline = set.timeline.expect("smb-guest brings its timeline");
        assert_eq!(timeline.origin, "builtin:smb-guest/timeline.sql");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/smb-guest");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("pack dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = BUILTIN_PACKS[0]
            .files
            .iter()
            .map(|(f, _)| f.to_string())
            .collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "every packs/smb-guest/*.sql must be listed in BUILTIN_PACKS"
        );
        assert!(builtin_pack("nope").is_err());
    }

    #[test]
    fn one_timeline_per_run() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("t.sql"),
            "-- kind: timeline\n-- title: mine\n-- requires: Security: 4625\n\
             SELECT '2025-01-01' AS day, 'host' AS scope, 'h' AS name, 1 AS allowed, 0 AS rejected",
        )
        .expect("write");
        let own = load_dir(dir.path()).expect("a timeline alone is a pack");
        assert!(own.rules.is_empty());
        assert_eq!(
            own.timeline.as_ref().map(|t| t.title.as_str()),
            Some("mine")
        );
        let e = select(&["smb-guest".to_string()], &[dir.path().to_path_buf()])
            .expect_err("two timelines");
        let msg = e.to_string();
        assert!(
            msg.contains("builtin:smb-guest/timeline.sql") && msg.contains("t.sql"),
            "{msg}"
        );
    }
}
