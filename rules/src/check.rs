//! `rules check`: parse every rule and plan it (DataFusion logical plan, no execution) against a
//! session whose store is empty, so that unknown columns, functions and tables are reported with
//! the rule file and line before the rule ever runs on real data.

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use evtxsql_query::QueryError;

use crate::error::RulesError;
use crate::finding::{column_names, missing_standard_columns};
use crate::rule::{Rule, TimelineQuery};
use crate::runner::{RunOptions, register_relation};
use crate::timeline;

/// Plan every rule and the timeline query; return one error per bad file (empty: all good).
pub async fn check_rules(
    ctx: &SessionContext,
    rules: &[Rule],
    timeline: Option<&TimelineQuery>,
) -> Vec<RulesError> {
    let opts = RunOptions {
        shared_scan: false,
        timeline: timeline.cloned(),
        ..RunOptions::default()
    };
    if let Err(e) = register_relation(ctx, rules, &opts).await {
        return vec![e];
    }
    let mut errors = Vec::new();
    for rule in rules {
        if let Err(e) = check_rule(ctx, rule).await {
            errors.push(e);
        }
    }
    if let Some(t) = timeline
        && let Err(e) = check_timeline(ctx, t).await
    {
        errors.push(e);
    }
    errors
}

async fn check_timeline(ctx: &SessionContext, t: &TimelineQuery) -> Result<(), RulesError> {
    let as_error = |error: DataFusionError| {
        let (message, line) = located(&t.sql, t.sql_line, error);
        RulesError::Sql {
            origin: t.origin.clone(),
            line,
            message,
        }
    };
    let state = ctx.state();
    let plan = state.create_logical_plan(&t.sql).await.map_err(as_error)?;
    state.optimize(&plan).map_err(as_error)?;
    let names = column_names(plan.schema());
    match timeline::column_problem(&names) {
        Some(message) => Err(RulesError::Sql {
            origin: t.origin.clone(),
            line: t.sql_line,
            message,
        }),
        None => Ok(()),
    }
}

async fn check_rule(ctx: &SessionContext, rule: &Rule) -> Result<(), RulesError> {
    let state = ctx.state();
    let plan = state
        .create_logical_plan(&rule.sql)
        .await
        .map_err(|e| sql_error(rule, e))?;
    // The analyzer (type coercion) and optimizer catch what planning alone lets through, e.g.
    // `a IS NOT DISTINCT FROM b AND c` parsed as `a IS NOT DISTINCT FROM (b AND c)`.
    state.optimize(&plan).map_err(|e| sql_error(rule, e))?;
    if !matches!(
        plan,
        datafusion::logical_expr::LogicalPlan::Projection(_)
            | datafusion::logical_expr::LogicalPlan::Sort(_)
            | datafusion::logical_expr::LogicalPlan::Limit(_)
            | datafusion::logical_expr::LogicalPlan::Aggregate(_)
            | datafusion::logical_expr::LogicalPlan::Filter(_)
            | datafusion::logical_expr::LogicalPlan::Union(_)
            | datafusion::logical_expr::LogicalPlan::Distinct(_)
            | datafusion::logical_expr::LogicalPlan::SubqueryAlias(_)
            | datafusion::logical_expr::LogicalPlan::Window(_)
            | datafusion::logical_expr::LogicalPlan::Join(_)
    ) {
        return Err(RulesError::Sql {
            origin: rule.origin.clone(),
            line: rule.sql_line,
            message: format!(
                "a rule must be one SELECT query, found a {} statement",
                plan.display()
            ),
        });
    }
    let names = column_names(plan.schema());
    let missing = missing_standard_columns(&names);
    if !missing.is_empty() {
        return Err(RulesError::Sql {
            origin: rule.origin.clone(),
            line: rule.sql_line,
            message: format!(
                "the SELECT lacks the standard column(s) {} (every rule returns host, server, \
                 user_name, first_seen, last_seen, count, evidence; use NULL where none applies)",
                missing.join(", ")
            ),
        });
    }
    Ok(())
}

/// Map a DataFusion/sqlparser error to the rule file's line: the position query finds in it
/// (a diagnostic span or the parser's `Line: N`, counted from the SQL start); otherwise the first
/// line naming the unknown identifier; else the SQL start.
fn sql_error(rule: &Rule, error: DataFusionError) -> RulesError {
    let (message, line) = located(&rule.sql, rule.sql_line, error);
    RulesError::Sql {
        origin: rule.origin.clone(),
        line,
        message,
    }
}

/// The first line of a planning error's message, and the file line it points at (`sql` starts
/// at line `sql_line` of its file).
fn located(sql: &str, sql_line: usize, error: DataFusionError) -> (String, usize) {
    let (message, position) = match QueryError::from_planning(error) {
        QueryError::Sql {
            message, position, ..
        } => (message, position),
        other => (other.to_string(), None),
    };
    let line = position
        .and_then(|(line, _)| usize::try_from(line).ok())
        .filter(|n| *n >= 1)
        .map(|n| sql_line + n - 1)
        .or_else(|| {
            identifiers(&message).into_iter().find_map(|id| {
                let id = id.to_ascii_lowercase();
                sql.lines()
                    .position(|l| l.to_ascii_lowercase().contains(&id))
                    .map(|p| sql_line + p)
            })
        })
        .unwrap_or(sql_line);
    let first = message.lines().next().unwrap_or(&message).to_string();
    (first, line)
}

/// Names an error message complains about: `No field named x`, `'x'`, `"x"`.
fn identifiers(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(i) = message.find("No field named ") {
        let rest = &message[i + 15..];
        let name: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let name = name.trim_end_matches('.');
        if let Some(last) = name.rsplit('.').next().filter(|s| !s.is_empty()) {
            out.push(last.to_string());
        }
    }
    for quote in ['\'', '"'] {
        let parts: Vec<&str> = message.split(quote).collect();
        for (i, p) in parts.iter().enumerate() {
            if i % 2 == 1 && !p.is_empty() && p.len() < 80 {
                out.push(p.rsplit('.').next().unwrap_or(p).to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines() {
        let ids = identifiers("Schema error: No field named nosuch_col. Valid fields are \"a\".");
        assert_eq!(ids.first().map(String::as_str), Some("nosuch_col"));
        let ids = identifiers("Error during planning: table 'datafusion.public.nope' not found");
        assert_eq!(ids, vec!["nope"]);
    }
}
