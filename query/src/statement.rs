//! Running SQL text that may hold several statements (`-f query.sql`, the shell), with errors
//! that say where in the text the problem is.

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast;

use crate::error::QueryError;

/// One parsed statement.
#[derive(Debug, Clone)]
pub struct SqlStatement {
    statement: Statement,
}

impl SqlStatement {
    /// True for statements whose result is rows to show (SELECT, VALUES, EXPLAIN, SHOW,
    /// DESCRIBE); false for DDL and settings.
    pub fn returns_rows(&self) -> bool {
        match &self.statement {
            Statement::Statement(s) => matches!(
                **s,
                ast::Statement::Query(_)
                    | ast::Statement::Explain { .. }
                    | ast::Statement::ExplainTable { .. }
                    | ast::Statement::ShowTables { .. }
                    | ast::Statement::ShowColumns { .. }
                    | ast::Statement::ShowVariable { .. }
                    | ast::Statement::ShowFunctions { .. }
            ),
            Statement::Explain(_) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for SqlStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.statement.fmt(f)
    }
}

/// Parse `sql` into its statements (separated by `;`). Empty text gives no statements.
pub fn parse_statements(sql: &str) -> Result<Vec<SqlStatement>, QueryError> {
    let parsed = DFParser::parse_sql(sql).map_err(QueryError::from_planning)?;
    Ok(parsed
        .into_iter()
        .map(|statement| SqlStatement { statement })
        .collect())
}

/// Plan and start one statement; DDL (CREATE VIEW, SET) takes effect here.
pub async fn execute(
    ctx: &SessionContext,
    statement: &SqlStatement,
) -> Result<DataFrame, QueryError> {
    let state = ctx.state();
    let plan = state
        .statement_to_plan(statement.statement.clone())
        .await
        .map_err(QueryError::from_planning)?;
    ctx.execute_logical_plan(plan)
        .await
        .map_err(QueryError::from_planning)
}

/// Parse and run SQL holding exactly one statement.
pub async fn sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame, QueryError> {
    let statements = parse_statements(sql)?;
    match statements.as_slice() {
        [one] => execute(ctx, one).await,
        [] => Err(QueryError::InvalidOption {
            what: "SQL",
            value: String::new(),
            message: "no statement given".into(),
        }),
        _ => Err(QueryError::InvalidOption {
            what: "SQL",
            value: sql.chars().take(60).collect(),
            message: format!(
                "{} statements given where one was expected",
                statements.len()
            ),
        }),
    }
}
