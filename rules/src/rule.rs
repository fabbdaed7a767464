//! One rule: a `.sql` file with a `-- key: value` header and one SELECT.
//!
//! ```sql
//! -- id: client_rejected_guest
//! -- title: SMB client rejected an insecure guest logon
//! -- severity: medium
//! -- description: The client refused to log on as guest (31017).
//! -- tags: attack.t1021.002, smb, guest
//! -- references: https://learn.microsoft.com/...
//! -- falsepositives: NAS boxes that only offer guest shares
//! -- requires: Microsoft-Windows-SMBClient: 31017
//! SELECT computer AS host, ... FROM smb_events WHERE ...
//! ```
//!
//! Keys may repeat: list keys (`tags`, `references`, `falsepositives`, `requires`) collect every
//! value (comma separated), text keys (`description`) join their lines. `requires` names a
//! provider or a channel (matched case-insensitively) and the event ids the rule reads; the runner
//! loads only those events into the shared relation `smb_events`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{HeaderProblem, Result, RulesError, UnknownName};

/// How urgent a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(UnknownName {
                what: "severity",
                value: other.to_string(),
                expected: "info, low, medium, high, critical".into(),
            }),
        }
    }
}

/// Events a rule reads: a provider or channel name and event ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// Provider (`Microsoft-Windows-SMBClient`) or channel (`Security`) name.
    pub source: String,
    pub event_ids: Vec<u32>,
}

/// A parsed rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub requires: Vec<Requirement>,
    /// `detection` (the default) or `inventory`: inventory rules describe the estate (posture,
    /// dependencies on guest access) rather than raise an alert; `--fail-on` ignores them.
    pub kind: RuleKind,
    /// The pack the rule came from (`smb-guest`, or the directory name of `--rules DIR`).
    pub pack: String,
    /// Where it came from: `builtin:smb-guest/x.sql` or a file path.
    pub origin: String,
    /// The SELECT statement (without the header).
    pub sql: String,
    /// Line number (1-based) of the first SQL line in the file.
    pub sql_line: usize,
}

/// Whether a rule raises alerts or describes the estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Detection,
    Inventory,
}

/// The columns every rule returns, in this order, before any extra columns.
pub const STANDARD_COLUMNS: [&str; 7] = [
    "host",
    "server",
    "user_name",
    "first_seen",
    "last_seen",
    "count",
    "evidence",
];

/// A pack file: a rule, or the pack's timeline query (`-- kind: timeline`).
#[derive(Debug, Clone)]
pub enum PackFile {
    Rule(Rule),
    Timeline(TimelineQuery),
}

impl PackFile {
    /// Parse a pack file's text: a timeline query when its header says `-- kind: timeline`,
    /// otherwise a rule. `origin` names it in errors (`file:line: message`).
    pub fn parse(text: &str, origin: &str, pack: &str) -> Result<PackFile> {
        let parsed = Parsed::new(text, origin)?;
        if parsed.header.kind == Some(FileKind::Timeline) {
            parsed.timeline(origin, pack).map(PackFile::Timeline)
        } else {
            parsed.rule(origin, pack).map(PackFile::Rule)
        }
    }
}

/// A header and the SQL after it.
struct Parsed {
    header: Builder,
    sql: String,
    sql_line: usize,
}

impl Parsed {
    fn new(text: &str, origin: &str) -> Result<Parsed> {
        let mut b = Builder::default();
        let mut sql_start = None;
        for (idx, line) in text.lines().enumerate() {
            let lineno = idx + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let Some(comment) = trimmed.strip_prefix("--") else {
                sql_start = Some(idx);
                break;
            };
            let comment = comment.trim();
            if comment.is_empty() {
                continue;
            }
            let Some((key, value)) = comment.split_once(':') else {
                return Err(header(origin, lineno, HeaderProblem::NotKeyValue));
            };
            b.add(key.trim(), value.trim())
                .map_err(|p| header(origin, lineno, p))?;
        }
        let Some(start) = sql_start else {
            return Err(header(origin, 1, HeaderProblem::NoSql));
        };
        let sql: String = text
            .lines()
            .skip(start)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .trim_end_matches(';')
            .to_string();
        Ok(Parsed {
            header: b,
            sql,
            sql_line: start + 1,
        })
    }

    fn rule(self, origin: &str, pack: &str) -> Result<Rule> {
        let b = self.header;
        let missing = |k: &'static str| header(origin, 1, HeaderProblem::Missing(k));
        let id = b.id.ok_or_else(|| missing("id"))?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(header(origin, 1, HeaderProblem::BadId(id)));
        }
        if b.requires.is_empty() {
            return Err(missing("requires"));
        }
        Ok(Rule {
            id,
            title: b.title.ok_or_else(|| missing("title"))?,
            severity: b.severity.ok_or_else(|| missing("severity"))?,
            description: b.description.join(" "),
            tags: b.tags,
            references: b.references,
            falsepositives: b.falsepositives,
            requires: b.requires,
            kind: match b.kind {
                Some(FileKind::Inventory) => RuleKind::Inventory,
                _ => RuleKind::Detection,
            },
            pack: pack.to_string(),
            origin: origin.to_string(),
            sql: self.sql,
            sql_line: self.sql_line,
        })
    }

    fn timeline(self, origin: &str, pack: &str) -> Result<TimelineQuery> {
        let b = self.header;
        let line = |p| header(origin, 1, p);
        if b.severity.is_some() {
            return Err(line(HeaderProblem::NotForTimeline("severity")));
        }
        if b.requires.is_empty() {
            return Err(line(HeaderProblem::Missing("requires")));
        }
        Ok(TimelineQuery {
            title: b
                .title
                .ok_or_else(|| line(HeaderProblem::Missing("title")))?,
            description: b.description.join(" "),
            requires: b.requires,
            pack: pack.to_string(),
            origin: origin.to_string(),
            sql: self.sql,
            sql_line: self.sql_line,
        })
    }
}

/// A pack's daily allow/reject timeline (the report's charts and top lists): one SELECT over
/// `smb_events` returning `day` (`YYYY-MM-DD`), `scope` (`host` or `server`), `name`, `allowed`,
/// `rejected`. A pack file whose header says `-- kind: timeline`; it takes `title`,
/// `description` and `requires` (loaded into the shared relation like a rule's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineQuery {
    pub title: String,
    pub description: String,
    pub requires: Vec<Requirement>,
    pub pack: String,
    pub origin: String,
    pub sql: String,
    pub sql_line: usize,
}

/// The columns a timeline query returns, in this order.
pub const TIMELINE_COLUMNS: [&str; 5] = ["day", "scope", "name", "allowed", "rejected"];

impl Rule {
    /// Parse a rule file's text. `origin` names it in errors (`file:line: message`). A timeline
    /// file (`-- kind: timeline`) is an error here; [`PackFile::parse`] takes either.
    pub fn parse(text: &str, origin: &str, pack: &str) -> Result<Rule> {
        match PackFile::parse(text, origin, pack)? {
            PackFile::Rule(r) => Ok(r),
            PackFile::Timeline(_) => Err(header(
                origin,
                1,
                HeaderProblem::Unknown(UnknownName {
                    what: "kind",
                    value: "timeline".into(),
                    expected: "detection, inventory; a timeline is a pack file, not a rule".into(),
                }),
            )),
        }
    }

    /// MITRE ATT&CK technique ids among the tags (`attack.t1021.002` → `T1021.002`).
    pub fn attack_ids(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack.t"))
            .map(|t| format!("T{}", t.to_ascii_uppercase()))
            .collect()
    }
}

fn header(origin: &str, line: usize, problem: HeaderProblem) -> RulesError {
    RulesError::Header {
        origin: origin.to_string(),
        line,
        problem,
    }
}

/// The `kind:` of a pack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Detection,
    Inventory,
    Timeline,
}

#[derive(Default)]
struct Builder {
    id: Option<String>,
    title: Option<String>,
    severity: Option<Severity>,
    kind: Option<FileKind>,
    description: Vec<String>,
    tags: Vec<String>,
    references: Vec<String>,
    falsepositives: Vec<String>,
    requires: Vec<Requirement>,
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

impl Builder {
    fn add(&mut self, key: &str, value: &str) -> std::result::Result<(), HeaderProblem> {
        let once = |slot: &mut Option<String>, k: &'static str| {
            if slot.is_some() {
                return Err(HeaderProblem::Twice(k));
            }
            if value.is_empty() {
                return Err(HeaderProblem::Empty(k));
            }
            *slot = Some(value.to_string());
            Ok(())
        };
        match key.to_ascii_lowercase().as_str() {
            "id" => once(&mut self.id, "id")?,
            "title" => once(&mut self.title, "title")?,
            "severity" => self.severity = Some(value.parse()?),
            "kind" => {
                self.kind = Some(match value.to_ascii_lowercase().as_str() {
                    "detection" => FileKind::Detection,
                    "inventory" => FileKind::Inventory,
                    "timeline" => FileKind::Timeline,
                    other => {
                        return Err(UnknownName {
                            what: "kind",
                            value: other.to_string(),
                            expected: "detection, inventory, timeline".into(),
                        }
                        .into());
                    }
                })
            }
            "description" => self.description.push(value.to_string()),
            "tags" => self.tags.extend(list(value)),
            // URLs hold colons and commas; one reference per line.
            "references" | "reference" => self.references.push(value.to_string()),
            "falsepositives" => self.falsepositives.extend(list(value)),
            "requires" => self.requires.push(parse_requirement(value)?),
            // Unknown keys (author, date, status, ...) are kept out of the model but allowed.
            _ => {}
        }
        Ok(())
    }
}

/// `Microsoft-Windows-SMBClient: 31017, 31022` → provider/channel + ids.
fn parse_requirement(value: &str) -> std::result::Result<Requirement, HeaderProblem> {
    let Some((source, ids)) = value.rsplit_once(':') else {
        return Err(HeaderProblem::RequiresShape(value.to_string()));
    };
    let source = source.trim();
    if source.is_empty() {
        return Err(HeaderProblem::RequiresNoSource);
    }
    let mut event_ids = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        event_ids.push(
            id.parse::<u32>()
                .map_err(|_| HeaderProblem::RequiresBadId(id.to_string()))?,
        );
    }
    if event_ids.is_empty() {
        return Err(HeaderProblem::RequiresNoIds(value.to_string()));
    }
    Ok(Requirement {
        source: source.to_string(),
        event_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "-- id: r1\n-- title: T\n-- severity: High\n-- description: a\n\
        -- description: b\n-- tags: attack.t1021.002, smb\n-- requires: Windows PowerShell: 400, 600\n\
        -- requires: Security: 4624\n\nSELECT 1 AS x;\n";

    #[test]
    fn parses_header_and_sql() {
        let r = Rule::parse(RULE, "r1.sql", "p").expect("parse");
        assert_eq!(r.id, "r1");
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.description, "a b");
        assert_eq!(r.attack_ids(), vec!["T1021.002"]);
        assert_eq!(r.requires.len(), 2);
        assert_eq!(r.requires[0].source, "Windows PowerShell");
        assert_eq!(r.requires[0].event_ids, vec![400, 600]);
        assert_eq!(r.sql, "SELECT 1 AS x");
        assert_eq!(r.sql_line, 10);
        assert_eq!(r.kind, RuleKind::Detection);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "-- id: r\n-- title: t\n-- severity: huge\nSELECT 1";
        let e = Rule::parse(bad, "x.sql", "p").expect_err("bad severity");
        assert!(
            e.to_string().starts_with("x.sql:3: unknown severity"),
            "{e}"
        );
        let e = Rule::parse(
            "-- id: r\n-- title: t\n-- severity: low\n-- requires: Security: x\nSELECT 1",
            "y.sql",
            "p",
        )
        .expect_err("bad id");
        assert!(e.to_string().starts_with("y.sql:4:"), "{e}");
        let e = Rule::parse("-- title: t\nSELECT 1", "z.sql", "p").expect_err("no id");
        assert!(e.to_string().contains("missing `-- id:`"), "{e}");
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }
}
