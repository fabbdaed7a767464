//! Geometry of the HTML report's charts: one small stacked-bar chart per server and per client
//! host, a bar per day (rejected below, allowed on top). Only numbers and plain strings leave
//! this module; the template writes the SVG and escapes every string.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::timeline::{DailyCount, Scope};

/// Charts per scope at most (the busiest first).
pub const MAX_CHARTS: usize = 12;
/// Days on the x axis at most (the most recent).
pub const MAX_DAYS: usize = 180;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    /// `allowed` or `rejected` (CSS class).
    pub class: &'static str,
    /// Tooltip: `2025-01-31: 3 allowed`.
    pub tip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub x: String,
    pub y: String,
    pub anchor: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub scope: &'static str,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub allowed: u64,
    pub rejected: u64,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    /// Baseline and axis: x1, y1, x2, y2.
    pub axis: [String; 4],
}

/// The charts of one scope, plus how many names were left out.
#[derive(Debug, Clone, Serialize)]
pub struct ChartSet {
    pub charts: Vec<Chart>,
    pub omitted: usize,
    pub days: usize,
    pub days_omitted: usize,
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

fn days_between(timeline: &[DailyCount]) -> Vec<String> {
    let parsed: Vec<NaiveDate> = timeline
        .iter()
        .filter_map(|d| NaiveDate::parse_from_str(&d.day, "%Y-%m-%d").ok())
        .collect();
    let (Some(min), Some(max)) = (parsed.iter().min(), parsed.iter().max()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut d = *min;
    while d <= *max {
        out.push(d.format("%Y-%m-%d").to_string());
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// Build the charts for `scope` from the whole timeline (all charts share the same days).
pub fn charts(timeline: &[DailyCount], scope: Scope) -> ChartSet {
    let mut all_days = days_between(timeline);
    let days_omitted = all_days.len().saturating_sub(MAX_DAYS);
    all_days.drain(..days_omitted);
    let day_index: BTreeMap<&str, usize> = all_days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let mut per_name: BTreeMap<&str, Vec<(usize, u64, u64)>> = BTreeMap::new();
    for d in timeline.iter().filter(|d| d.scope == scope) {
        if let Some(i) = day_index.get(d.day.as_str()) {
            per_name
                .entry(&d.name)
                .or_default()
                .push((*i, d.allowed, d.rejected));
        }
    }
    let mut names: Vec<(&str, u64, u64)> = per_name
        .iter()
        .map(|(n, v)| (*n, v.iter().map(|x| x.1).sum(), v.iter().map(|x| x.2).sum()))
        .collect();
    names.sort_by(|a, b| (b.1 + b.2, b.1, a.0).cmp(&(a.1 + a.2, a.1, b.0)));
    let omitted = names.len().saturating_sub(MAX_CHARTS);
    names.truncate(MAX_CHARTS);
    let n_days = all_days.len().max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n_days;
    let bar_w = (slot * 0.8).max(1.0);
    let base = TOP + plot_h;
    let scope_name = match scope {
        Scope::Host => "host",
        Scope::Server => "server",
    };
    let charts = names
        .into_iter()
        .map(|(name, allowed, rejected)| {
            let rows = &per_name[name];
            let max = rows.iter().map(|r| r.1 + r.2).max().unwrap_or(1).max(1) as f64;
            let mut bars = Vec::new();
            for (i, a, r) in rows {
                let x = LEFT + *i as f64 * slot + (slot - bar_w) / 2.0;
                let hr = *r as f64 / max * plot_h;
                let ha = *a as f64 / max * plot_h;
                let day = &all_days[*i];
                if *r > 0 {
                    bars.push(Bar {
                        x: f(x),
                        y: f(base - hr),
                        w: f(bar_w),
                        h: f(hr),
                        class: "rejected",
                        tip: format!("{day}: {r} rejected"),
                    });
                }
                if *a > 0 {
                    bars.push(Bar {
                        x: f(x),
                        y: f(base - hr - ha),
                        w: f(bar_w),
                        h: f(ha),
                        class: "allowed",
                        tip: format!("{day}: {a} allowed"),
                    });
                }
            }
            let mut labels = vec![
                Label {
                    x: f(LEFT - 4.0),
                    y: f(TOP + 8.0),
                    anchor: "end",
                    text: format!("{}", max as u64),
                },
                Label {
                    x: f(LEFT - 4.0),
                    y: f(base),
                    anchor: "end",
                    text: "0".into(),
                },
            ];
            if let Some(first) = all_days.first() {
                labels.push(Label {
                    x: f(LEFT),
                    y: f(HEIGHT - 10.0),
                    anchor: "start",
                    text: first.clone(),
                });
            }
            if all_days.len() > 1
                && let Some(last) = all_days.last()
            {
                labels.push(Label {
                    x: f(WIDTH - RIGHT),
                    y: f(HEIGHT - 10.0),
                    anchor: "end",
                    text: last.clone(),
                });
            }
            Chart {
                scope: scope_name,
                name: name.to_string(),
                width: WIDTH as u32,
                height: HEIGHT as u32,
                allowed,
                rejected,
                bars,
                labels,
                axis: [f(LEFT), f(base), f(WIDTH - RIGHT), f(base)],
            }
        })
        .collect();
    ChartSet {
        charts,
        omitted,
        days: all_days.len(),
        days_omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: &str, name: &str, a: u64, r: u64) -> DailyCount {
        DailyCount {
            day: day.into(),
            scope: Scope::Server,
            name: name.into(),
            allowed: a,
            rejected: r,
        }
    }

    #[test]
    fn stacked_bars_share_days() {
        let t = vec![
            d("2025-01-01", "nas", 1, 3),
            d("2025-01-03", "nas", 4, 0),
            d("2025-01-02", "fs", 0, 1),
        ];
        let set = charts(&t, Scope::Server);
        assert_eq!(set.days, 3);
        assert_eq!(set.charts.len(), 2);
        assert_eq!(set.charts[0].name, "nas");
        assert_eq!(set.charts[0].bars.len(), 3);
        assert_eq!(set.charts[0].allowed, 5);
        assert!(charts(&t, Scope::Host).charts.is_empty());
    }
}
