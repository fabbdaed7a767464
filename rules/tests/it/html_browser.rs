//! The HTML report in headless Chromium: it renders, shows the SVG charts, and no script from
//! the logs runs. Skips (with a message) when Chromium is not installed, and fails then under CI
//! (`EVTXSQL_REQUIRE_BROWSER` or `CI`, see evtxsql-testkit).

use std::path::Path;
use std::process::Command;

use evtxsql_rules::report::Format;

use super::reports::hostile_report;

fn dump_dom(file: &Path, profile: &Path) -> Option<String> {
    let chromium = evtxsql_testkit::chromium()?;
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8 DOM"))
}

#[test]
fn html_report_renders_charts_and_runs_no_log_script() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("report.html");
    std::fs::write(&file, hostile_report().render(Format::Html).unwrap()).unwrap();
    let Some(dom) = dump_dom(&file, &tmp.path().join("profile")) else {
        return;
    };
    // It rendered: the body and the findings are there.
    assert!(dom.contains("id=\"findings\""), "{dom}");
    assert!(dom.contains("client_allowed_guest"));
    // The charts: inline SVG with bars, per server and per host.
    assert!(
        dom.matches("<svg class=\"chart\"").count() >= 3,
        "charts missing"
    );
    assert!(dom.contains("<rect class=\"allowed\""));
    assert!(dom.contains("<rect class=\"rejected\""));
    // No payload ran: the title is ours, no element was injected.
    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    assert_eq!(title, "smb-guest report");
    assert!(!dom.contains("pwned-") || dom.contains("&lt;script&gt;document.title='pwned-script'"));
    assert!(!dom.contains("<img"), "an img element was injected");
    assert!(
        !dom.to_ascii_lowercase().contains("<script"),
        "a script element exists"
    );
    assert!(!dom.contains("<svg onload"), "an svg element was injected");
    // The payloads are shown as text.
    assert!(dom.contains("&lt;script&gt;document.title='pwned-script'&lt;/script&gt;"));
    assert!(dom.contains("\"&gt;&lt;img src=x onerror=\"document.title='pwned-img'\"&gt;"));
}
