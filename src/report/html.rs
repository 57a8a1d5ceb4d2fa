//! The HTML rendering: one self-contained file. CSS is inline, charts are
//! inline SVG, there is no script, and a Content-Security-Policy of
//! `default-src 'none'` makes the browser refuse any fetch the page could
//! ever trigger (the favicon is an empty `data:` URL for the same reason).
//! Every piece of text from the data is HTML-escaped.

use super::Result;
use super::charts;
use super::model::*;
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg: #1d232b; --muted: #5b6572; --line: #d9dee5; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin: 16px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card b { display: block; font-size: 22px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px; overflow-x: auto; }
.chart.wide { grid-column: 1 / 3; }
.chart svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; word-break: break-word; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; background: #eef1f5; padding: 0 3px; border-radius: 3px; }
.incident { background: #fff; border: 1px solid var(--line); border-left: 6px solid #999; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.sev { display: inline-block; min-width: 64px; text-align: center; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; text-transform: uppercase; }
.sev-critical { background: #8b0000; } .inc-critical { border-left-color: #8b0000; }
.sev-high { background: #e03c31; } .inc-high { border-left-color: #e03c31; }
.sev-medium { background: #f0a202; } .inc-medium { border-left-color: #f0a202; }
.sev-low { background: #4a90d9; } .inc-low { border-left-color: #4a90d9; }
.sev-info { background: #9e9e9e; } .inc-info { border-left-color: #9e9e9e; }
ul.reasons { margin: 2px 0 6px 18px; padding: 0; }
.na { color: var(--muted); font-style: italic; }
nav a { margin-right: 12px; color: #1f5fa8; text-decoration: none; }
@media print { body { background: #fff; } .chart, .card, .incident { break-inside: avoid; } }
"#;

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn severity_badge(severity: &str) -> String {
    let class = severity
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "<span class=\"sev sev-{class}\">{}</span>",
        escape(severity)
    )
}

fn table(
    out: &mut String,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    numeric: &[usize],
) {
    out.push_str("<table><thead><tr>");
    for column in header {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            if numeric.contains(&index) {
                let _ = write!(out, "<td class=\"num\">{cell}</td>");
            } else {
                let _ = write!(out, "<td>{cell}</td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

/// A `<h3>` titled table of plain-text cells (escaped here), or `empty` in
/// place of a table without rows.
pub(crate) fn titled_table(
    out: &mut String,
    title: &str,
    header: &[&str],
    rows: &[Vec<String>],
    numeric: &[usize],
    empty: &str,
) {
    let _ = writeln!(out, "<h3>{}</h3>", escape(title));
    if rows.is_empty() {
        let _ = writeln!(out, "<p class=\"na\">{}</p>", escape(empty));
        return;
    }
    table(
        out,
        header,
        rows.iter()
            .map(|row| row.iter().map(|cell| escape(cell)).collect()),
        numeric,
    );
}

fn table_section(out: &mut String, anchor: &str, title: &str, section: &TableSection) {
    let _ = writeln!(out, "<h2 id=\"{anchor}\">{}</h2>", escape(title));
    if !section.available || section.rows.is_empty() {
        let _ = writeln!(out, "<p class=\"na\">{}</p>", escape(&section.note));
        return;
    }
    let header: Vec<&str> = section.columns.iter().map(String::as_str).collect();
    table(
        out,
        &header,
        section
            .rows
            .iter()
            .map(|row| row.iter().map(|cell| escape(cell)).collect()),
        &[],
    );
    if section.truncated {
        out.push_str("<p class=\"muted\">First rows only.</p>");
    }
}

fn anomaly_item(out: &mut String, anomaly: &AnomalyEntry) {
    let _ = write!(
        out,
        "<li>{} {} <span class=\"muted\">(<code>{}</code>, {}, score {:.2}, {}–{} UTC)</span>",
        severity_badge(&anomaly.severity),
        escape(&anomaly.title),
        escape(&anomaly.detector),
        escape(&anomaly.kind),
        anomaly.score,
        anomaly.window_start.format("%H:%M:%S"),
        anomaly.window_end.format("%H:%M:%S")
    );
    if !anomaly.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">");
        for reason in &anomaly.reasons {
            let _ = write!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ul>");
    }
    if !anomaly.evidence_audit_ids.is_empty() {
        let ids: Vec<String> = anomaly
            .evidence_audit_ids
            .iter()
            .map(|id| format!("<code>{}</code>", escape(id)))
            .collect();
        let _ = write!(
            out,
            "<div class=\"muted\">evidence: {}</div>",
            ids.join(" ")
        );
    }
    out.push_str("</li>");
}

pub fn to_html(report: &Report) -> Result<String> {
    let summary = &report.summary;
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("auditlens report {} ({})", report.date, report.cluster);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head><body><main>\n",
        escape(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        out,
        "<p class=\"muted\">UTC day {} – {} · generated {} UTC from the {} · JSON schema version {}</p>",
        time(&report.window_start),
        time(&report.window_end),
        time(&report.generated_at),
        escape(&report.catalog_source),
        report.schema_version
    );
    out.push_str(
        "<nav><a href=\"#incidents\">Incidents</a><a href=\"#activity\">Activity</a><a href=\"#first-seen\">First seen</a>\
         <a href=\"#denied\">Denied</a><a href=\"#rbac\">RBAC</a><a href=\"#rbac-drift\">RBAC drift</a><a href=\"#models\">Models</a><a href=\"#feedback\">Feedback</a><a href=\"#ingest\">Ingest</a>\
         <a href=\"#compliance\">Compliance</a></nav>\n",
    );
    out.push_str("<div class=\"cards\">");
    for (label, value) in [
        ("incidents", summary.incidents),
        ("anomalies", summary.anomalies),
        ("requests", summary.requests),
        ("events", summary.events),
        ("identities", summary.identities),
        ("denied", summary.denied_requests),
    ] {
        let _ = write!(
            out,
            "<div class=\"card\"><b>{value}</b><span class=\"muted\">{label}</span></div>"
        );
    }
    out.push_str("</div>\n<div class=\"charts\">");
    for (class, svg) in [
        ("chart", charts::events_by_hour(report)?),
        ("chart", charts::anomalies_by_hour(report)?),
        ("chart wide", charts::top_identities(report)?),
        ("chart", charts::denied_by_hour(report)?),
    ] {
        let _ = write!(out, "<div class=\"{class}\">{svg}</div>");
    }
    let _ = write!(out, "<div class=\"chart\"><h3>Denied requests per day</h3>");
    table(
        &mut out,
        &["day", "denied"],
        report
            .denied
            .daily
            .iter()
            .map(|day| vec![day.date.to_string(), day.count.to_string()]),
        &[1],
    );
    out.push_str("</div></div>\n");

    let _ = writeln!(out, "<h2 id=\"incidents\">Incidents</h2>");
    if report.incidents.is_empty() {
        out.push_str("<p class=\"na\">No incidents.</p>");
    }
    for incident in &report.incidents {
        let class = incident
            .severity
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let _ = write!(
            out,
            "<div class=\"incident inc-{class}\"><h3>{} {} — {}</h3><div class=\"muted\">incident <code>{}</code> · {} anomalies · {} – {} UTC · detectors: {}</div><ul>",
            severity_badge(&incident.severity),
            escape(&incident.title),
            escape(&incident.identity),
            escape(&incident.id),
            incident.anomaly_count,
            time(&incident.first_seen),
            time(&incident.last_seen),
            escape(&incident.detectors.join(", "))
        );
        for anomaly in &incident.anomalies {
            anomaly_item(&mut out, anomaly);
        }
        out.push_str("</ul></div>\n");
    }
    if !report.ungrouped_anomalies.is_empty() {
        out.push_str("<h3>Anomalies outside incidents</h3><ul>");
        for anomaly in &report.ungrouped_anomalies {
            anomaly_item(&mut out, anomaly);
        }
        out.push_str("</ul>");
    }

    let _ = writeln!(
        out,
        "<h2 id=\"activity\">Identity activity against the previous 7 days</h2>"
    );
    table(
        &mut out,
        &[
            "identity",
            "kind",
            "requests",
            "usual / day",
            "ratio",
            "denied",
            "writes",
            "namespaces",
            "source IPs",
        ],
        report.identity_activity.iter().map(|activity| {
            vec![
                escape(&activity.identity),
                escape(&activity.identity_kind),
                activity.requests.to_string(),
                format!("{:.1}", activity.usual_daily_requests),
                activity
                    .ratio_to_usual
                    .map(|ratio| format!("{ratio:.1}×"))
                    .unwrap_or_else(|| "new".to_string()),
                activity.denied.to_string(),
                activity.writes.to_string(),
                activity.namespaces.to_string(),
                activity.source_ips.to_string(),
            ]
        }),
        &[2, 3, 4, 5, 6, 7, 8],
    );

    let _ = writeln!(out, "<h2 id=\"first-seen\">First seen</h2>");
    if !report.new_identities.is_empty() {
        let names: Vec<String> = report
            .new_identities
            .iter()
            .map(|name| format!("<code>{}</code>", escape(name)))
            .collect();
        let _ = writeln!(
            out,
            "<p>New identities (no request in the look-back period): {}</p>",
            names.join(" ")
        );
    }
    if report.first_seen.is_empty() {
        out.push_str("<p class=\"na\">No namespace or source IP new to a known identity.</p>");
    } else {
        table(
            &mut out,
            &["identity", "what", "value", "first at (UTC)", "requests"],
            report.first_seen.iter().map(|seen| {
                vec![
                    escape(&seen.identity),
                    escape(&seen.what),
                    escape(&seen.value),
                    time(&seen.first_at),
                    seen.requests.to_string(),
                ]
            }),
            &[4],
        );
    }

    let denied = &report.denied;
    let _ = writeln!(out, "<h2 id=\"denied\">Denied requests</h2>");
    let _ = writeln!(
        out,
        "<p>{} denied today; {:.1} per day on average over the previous 7 days.</p>",
        denied.total, denied.previous_daily_average
    );
    if !denied.top.is_empty() {
        table(
            &mut out,
            &["identity", "verb", "resource", "denied"],
            denied.top.iter().map(|group| {
                vec![
                    escape(&group.identity),
                    escape(&group.verb),
                    escape(&group.resource),
                    group.count.to_string(),
                ]
            }),
            &[3],
        );
    }

    let _ = writeln!(out, "<h2 id=\"rbac\">RBAC changes</h2>");
    if report.rbac_changes.is_empty() {
        out.push_str("<p class=\"na\">No RBAC object was written.</p>");
    } else {
        table(
            &mut out,
            &[
                "when (UTC)",
                "who",
                "verb",
                "resource",
                "namespace",
                "name",
                "result",
                "audit ID",
            ],
            report.rbac_changes.iter().map(|change| {
                vec![
                    time(&change.at),
                    escape(&change.identity),
                    escape(&change.verb),
                    escape(&change.resource),
                    escape(change.namespace.as_deref().unwrap_or("")),
                    escape(change.name.as_deref().unwrap_or("")),
                    change
                        .response_code
                        .map(|code| code.to_string())
                        .unwrap_or_default(),
                    format!("<code>{}</code>", escape(&change.audit_id)),
                ]
            }),
            &[],
        );
        if report.rbac_changes_truncated {
            out.push_str("<p class=\"muted\">List cut at the row limit.</p>");
        }
    }
    table_section(
        &mut out,
        "rbac-risky",
        "RBAC risky grants",
        &report.rbac_risky_grants,
    );
    table_section(
        &mut out,
        "rbac-unused",
        "Unused sensitive grants",
        &report.rbac_unused_grants,
    );
    super::drift_section::html(&mut out, &report.rbac_drift, report.date)?;
    table_section(&mut out, "models", "Model status", &report.models);
    super::feedback_section::html(&mut out, &report.feedback, report.date)?;

    let ingest = &report.ingest;
    let _ = writeln!(out, "<h2 id=\"ingest\">Ingest health</h2>");
    let seconds = |value: Option<f64>| {
        value
            .map(|seconds| format!("{seconds:.1} s"))
            .unwrap_or_else(|| "n/a".to_string())
    };
    if ingest.manifest_available {
        table(
            &mut out,
            &[
                "parts written",
                "bytes",
                "rows",
                "live parts for the day",
                "mean commit lag",
                "max commit lag",
                "quarantined lines",
            ],
            [vec![
                ingest.parts_written.to_string(),
                ingest.part_bytes.to_string(),
                ingest.rows_written.to_string(),
                ingest.parts_for_day.to_string(),
                seconds(ingest.mean_commit_lag_seconds),
                seconds(ingest.max_commit_lag_seconds),
                ingest.quarantined_total.to_string(),
            ]],
            &[0, 1, 2, 3, 4, 5, 6],
        );
    } else {
        let _ = writeln!(
            out,
            "<p class=\"na\">Manifest not available; {} lines quarantined.</p>",
            ingest.quarantined_total
        );
    }
    if !ingest.quarantined_by_reason.is_empty() {
        table(
            &mut out,
            &["quarantine reason", "lines"],
            ingest
                .quarantined_by_reason
                .iter()
                .map(|(reason, count)| vec![escape(reason), count.to_string()]),
            &[1],
        );
    }

    let compliance = &report.compliance;
    let _ = writeln!(out, "<h2 id=\"compliance\">Compliance evidence</h2>");
    let _ = writeln!(
        out,
        "<p class=\"muted\">For SOC 2 / ISO 27001 evidence: who read secrets, every RBAC change ({} listed above), every incident with the audit IDs of its evidence.</p>",
        compliance.rbac_change_count
    );
    out.push_str("<h3>Secret reads</h3>");
    if compliance.secret_access.is_empty() {
        out.push_str("<p class=\"na\">No secret was read.</p>");
    } else {
        table(
            &mut out,
            &[
                "identity",
                "namespace",
                "verb",
                "requests",
                "secrets",
                "first (UTC)",
                "last (UTC)",
            ],
            compliance.secret_access.iter().map(|access| {
                vec![
                    escape(&access.identity),
                    escape(access.namespace.as_deref().unwrap_or("(all)")),
                    escape(&access.verb),
                    access.requests.to_string(),
                    escape(&access.names.join(", ")),
                    time(&access.first_at),
                    time(&access.last_at),
                ]
            }),
            &[3],
        );
    }
    out.push_str("<h3>Incidents and evidence</h3>");
    if compliance.incident_evidence.is_empty() {
        out.push_str("<p class=\"na\">No incidents.</p>");
    } else {
        table(
            &mut out,
            &["incident", "severity", "identity", "evidence audit IDs"],
            compliance.incident_evidence.iter().map(|evidence| {
                vec![
                    format!("<code>{}</code>", escape(&evidence.incident_id)),
                    severity_badge(&evidence.severity),
                    escape(&evidence.identity),
                    evidence
                        .evidence_audit_ids
                        .iter()
                        .map(|id| escape(id))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            }),
            &[],
        );
    }
    out.push_str("</main></body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
