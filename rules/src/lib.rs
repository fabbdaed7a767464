//! evtxsql-rules: rule packs (SQL files with a metadata header), the runner that evaluates them
//! over an evtxsql session with one shared scan, findings, and the report renderers.
//!
//! - [`rule`]: the rule file format (`-- key: value` header + one SELECT) and [`Severity`].
//! - [`pack`]: the built-in packs embedded in the binary (`smb-guest`) and `--rules DIR`.
//! - [`runner`]: builds the shared relation `smb_events` once, then runs every rule on it.
//! - [`reuse`]: runs a rule's plan with each repeated subplan (a CTE read twice) computed once.
//! - [`shared`]: plans which rows and columns the rules read; the partitioned in-memory relation.
//! - [`check`]: plans rules against an empty store (`rules check`).
//! - [`finding`]: a finding, converted from a rule's result rows.
//! - [`timeline`]: runs a pack's timeline query (daily allow/reject counts per host and server).
//! - [`report`]: text, JSON, JSON lines, CSV, Markdown and self-contained HTML.
//!
//! Knows rules and reports; the session (tables, views, functions) comes from `evtxsql-query`.

pub mod check;
pub mod error;
pub mod finding;
mod one_lane;
pub mod pack;
pub mod report;
mod reuse;
pub mod rule;
pub mod runner;
pub mod shared;
pub mod timeline;

pub use error::{Result, RulesError};
pub use finding::Finding;
pub use pack::RuleSet;
pub use pack::{BUILTIN_PACKS, DEFAULT_PACK};
pub use report::{Format, Report, ReportMeta};
pub use rule::{PackFile, Rule, RuleKind, Severity, TimelineQuery};
pub use runner::{RELATION, RunOptions, RunOutput};
