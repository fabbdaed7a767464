//! The views over `events` that make SMB and logon analysis read naturally. Each keeps every
//! column of `events` and adds `status_name`; names are compared case-insensitively because
//! sources differ (`Microsoft-Windows-SmbClient/Security` vs `...SMBClient/...`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result, TableReference, plan_err};
use datafusion::datasource::{TableType, ViewTable, provider_as_source};
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner};
use datafusion::logical_expr::{
    AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, ScalarUDF, TableProviderFilterPushDown,
    TableSource, WindowUDF,
};
use datafusion::optimizer::analyzer::Analyzer;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::planner::SqlToRel;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::error::QueryError;

/// (name, what it holds, SELECT).
pub const VIEWS: &[(&str, &str, &str)] = &[
    (
        "smb_client",
        "events of the SMB client (Microsoft-Windows-SMBClient: 31001, 31010, 31017, 31018, 31022, Connectivity 308xx)",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE lower(provider) = 'microsoft-windows-smbclient' \
            OR lower(channel) LIKE 'microsoft-windows-smbclient/%'",
    ),
    (
        "smb_server",
        "events of the SMB server (Microsoft-Windows-SMBServer: 551, 1006, 1007, 1009, 3000, 3023)",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE lower(provider) = 'microsoft-windows-smbserver' \
            OR lower(channel) LIKE 'microsoft-windows-smbserver/%'",
    ),
    (
        "logons",
        "Security logon events 4624, 4625, 4634, 4648, 4776 with user, logon type, source and status",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE event_id IN (4624, 4625, 4634, 4648, 4776) \
           AND lower(provider) = 'microsoft-windows-security-auditing'",
    ),
    (
        "share_access",
        "Security share access events 5140 (share) and 5145 (file in share) with user, share and source",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE event_id IN (5140, 5145) \
           AND lower(provider) = 'microsoft-windows-security-auditing'",
    ),
];

/// Create the views on `ctx`; `events` and the functions must be registered first.
///
/// In a local session ([`crate::session::is_local`]) each view is planned when a statement
/// first reads it ([`LazyView`]): planning the four views' SQL took ~7 % of a `SELECT count(*)`
/// that reads none of them. A session whose plans run on a cluster gets DataFusion's own views
/// (its plans are sent to the executors, which know those).
pub async fn register_views(ctx: &SessionContext) -> Result<(), QueryError> {
    if crate::session::is_local(ctx) {
        let setup = |what: String| move |source| QueryError::Setup { what, source };
        let events = ctx
            .table_provider("events")
            .await
            .map_err(setup("views: table events".into()))?;
        let planning = Arc::new(Planning::of(ctx, events));
        for (name, _, select) in VIEWS {
            let view = LazyView {
                definition: definition(name, select),
                select,
                planning: Arc::clone(&planning),
                view: OnceLock::new(),
            };
            ctx.register_table(*name, Arc::new(view))
                .map_err(setup(format!("view {name}")))?;
        }
        return Ok(());
    }
    for (name, _, select) in VIEWS {
        ctx.sql(&definition(name, select))
            .await
            .map_err(|source| QueryError::Setup {
                what: format!("view {name}"),
                source,
            })?;
    }
    Ok(())
}

/// The statement that makes view `name`: run as such in a cluster session, and the definition
/// `information_schema.views` shows in either kind of session.
fn definition(name: &str, select: &str) -> String {
    format!("CREATE OR REPLACE VIEW {name} AS {select}")
}

/// What planning a view's SQL needs, taken from the session when the views are registered: the
/// `events` table, the functions, expression planners and options.
#[derive(Debug)]
struct Planning {
    events: Arc<dyn TableProvider>,
    functions: HashMap<String, Arc<ScalarUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: Arc<ConfigOptions>,
}

impl Planning {
    fn of(ctx: &SessionContext, events: Arc<dyn TableProvider>) -> Self {
        let state = ctx.state_ref();
        let state = state.read();
        Planning {
            events,
            functions: state.scalar_functions().clone(),
            planners: state.expr_planners().to_vec(),
            options: Arc::clone(state.config().options()),
        }
    }

    /// `select` planned as `CREATE VIEW` plans it: SQL to a logical plan, types coerced.
    fn plan(&self, select: &str) -> Result<LogicalPlan> {
        let mut statements = DFParser::parse_sql_with_dialect(select, &GenericDialect {})?;
        let (Some(Statement::Statement(statement)), None) =
            (statements.pop_front(), statements.pop_front())
        else {
            return plan_err!("a view must be one SELECT");
        };
        let plan = SqlToRel::new(self).sql_statement_to_plan(*statement)?;
        Analyzer::with_rules(vec![Arc::new(TypeCoercion::new())]).execute_and_check(
            plan,
            &ConfigOptions::default(),
            |_, _| {},
        )
    }
}

impl ContextProvider for Planning {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        if name.table() == "events" && name.schema().is_none() {
            return Ok(provider_as_source(Arc::clone(&self.events)));
        }
        plan_err!("a view reads only the table events, not {name}")
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(name).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _names: &[String]) -> Option<arrow::datatypes::DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A view over `events` planned the first time a statement reads it, then a DataFusion
/// [`ViewTable`] in all but name. If its SQL cannot be planned (it always can: a test plans
/// every view), reading it fails with the planner's error.
#[derive(Debug)]
struct LazyView {
    select: &'static str,
    definition: String,
    planning: Arc<Planning>,
    view: OnceLock<Result<ViewTable, String>>,
}

impl LazyView {
    fn view(&self) -> Result<&ViewTable> {
        self.view
            .get_or_init(|| {
                let plan = self.planning.plan(self.select).map_err(|e| e.to_string())?;
                Ok(ViewTable::new(plan, Some(self.definition.clone())))
            })
            .as_ref()
            .map_err(|e| DataFusionError::Plan(format!("{}: {e}", self.definition)))
    }
}

#[async_trait]
impl TableProvider for LazyView {
    fn schema(&self) -> SchemaRef {
        match self.view() {
            Ok(view) => view.schema(),
            Err(_) => Arc::new(Schema::empty()),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.view().ok().and_then(|view| view.get_logical_plan())
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.view()?.scan(state, projection, filters, limit).await
    }
}
