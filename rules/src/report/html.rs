//! The HTML report: one self-contained file (inline CSS and SVG, no script, no network; a
//! Content-Security-Policy forbids both). Rendered by minijinja with HTML auto-escaping, so every
//! string from the logs (host, server, user names, evidence) is escaped by the template engine.

use std::collections::BTreeMap;

use minijinja::{Environment, context};

use super::Report;
use super::chart;
use crate::error::{Result, RulesError};
use crate::finding::Finding;
use crate::timeline::Scope;

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("report.html");

/// Render the HTML report.
pub fn render(r: &Report) -> Result<String> {
    let err = |e: minijinja::Error| RulesError::Render {
        format: "html".into(),
        message: format!("{e:#}"),
    };
    let mut env = Environment::new();
    // The name ends in `.html`: minijinja's default auto-escape callback escapes HTML.
    env.add_template(TEMPLATE_NAME, TEMPLATE).map_err(err)?;
    let tmpl = env.get_template(TEMPLATE_NAME).map_err(err)?;
    let mut by_rule: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        by_rule.entry(&f.rule).or_default().push(f);
    }
    let servers = chart::charts(&r.timeline, Scope::Server);
    let hosts = chart::charts(&r.timeline, Scope::Host);
    tmpl.render(context! {
        r => r,
        findings_by_rule => by_rule,
        servers => servers,
        hosts => hosts,
    })
    .map_err(err)
}
