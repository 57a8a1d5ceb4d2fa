//! The Markdown rendering, for chat and e-mail: the same sections as the HTML,
//! tables instead of charts. Cell text is escaped so a hostile user name or
//! namespace cannot break a table or inject links.

use super::model::*;
use std::fmt::Write;

/// Escapes text for a Markdown table cell or line.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' => {
                out.push('\\');
                out.push(character);
            }
            '\n' | '\r' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn table(out: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// A `###` titled table of plain-text cells (escaped here), or `empty` in
/// place of a table without rows.
pub(crate) fn titled_table(
    out: &mut String,
    title: &str,
    header: &[&str],
    rows: &[Vec<String>],
    empty: &str,
) {
    let _ = writeln!(out, "### {title}\n");
    if rows.is_empty() {
        let _ = writeln!(out, "_{empty}_\n");
        return;
    }
    table(
        out,
        header,
        rows.iter()
            .map(|row| row.iter().map(|cell| escape(cell)).collect()),
    );
}

fn table_section(out: &mut String, title: &str, section: &TableSection) {
    let _ = writeln!(out, "## {title}\n");
    if !section.available || section.rows.is_empty() {
        let _ = writeln!(out, "_{}_\n", escape(&section.note));
        return;
    }
    let header: Vec<&str> = section.columns.iter().map(String::as_str).collect();
    let escaped_header: Vec<String> = header.iter().map(|column| escape(column)).collect();
    let header_refs: Vec<&str> = escaped_header.iter().map(String::as_str).collect();
    table(
        out,
        &header_refs,
        section
            .rows
            .iter()
            .map(|row| row.iter().map(|cell| escape(cell)).collect()),
    );
    if section.truncated {
        out.push_str("_(first rows only)_\n\n");
    }
}

pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "# auditlens report: {} ({})\n",
        report.date,
        escape(&report.cluster)
    );
    let _ = writeln!(
        out,
        "{} events, {} requests by {} identities; {} denied; **{} incidents**, {} anomalies.  ",
        summary.events,
        summary.requests,
        summary.identities,
        summary.denied_requests,
        summary.incidents,
        summary.anomalies
    );
    let by_severity: Vec<String> = summary
        .anomalies_by_severity
        .iter()
        .map(|(severity, count)| format!("{severity}: {count}"))
        .collect();
    if !by_severity.is_empty() {
        let _ = writeln!(out, "Anomalies by severity: {}.  ", by_severity.join(", "));
    }
    let _ = writeln!(
        out,
        "Generated {} UTC from the {} (schema version {}).\n",
        time(&report.generated_at),
        escape(&report.catalog_source),
        report.schema_version
    );

    let _ = writeln!(out, "## Incidents\n");
    if report.incidents.is_empty() {
        out.push_str("_No incidents._\n\n");
    }
    for incident in &report.incidents {
        let _ = writeln!(
            out,
            "### [{}] {} — {}\n",
            incident.severity.to_uppercase(),
            escape(&incident.title),
            escape(&incident.identity)
        );
        let _ = writeln!(
            out,
            "Incident `{}`: {} anomalies from {} to {} UTC; detectors: {}.\n",
            incident.id.replace('`', ""),
            incident.anomaly_count,
            time(&incident.first_seen),
            time(&incident.last_seen),
            escape(&incident.detectors.join(", "))
        );
        for anomaly in &incident.anomalies {
            anomaly_lines(&mut out, anomaly);
        }
        out.push('\n');
    }
    if !report.ungrouped_anomalies.is_empty() {
        let _ = writeln!(out, "## Anomalies outside incidents\n");
        for anomaly in &report.ungrouped_anomalies {
            anomaly_lines(&mut out, anomaly);
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Identity activity against the previous 7 days\n");
    table(
        &mut out,
        &[
            "identity",
            "kind",
            "requests",
            "usual/day",
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
    );

    let _ = writeln!(out, "## First seen\n");
    if !report.new_identities.is_empty() {
        let names: Vec<String> = report
            .new_identities
            .iter()
            .map(|name| escape(name))
            .collect();
        let _ = writeln!(
            out,
            "New identities (no request in the look-back period): {}.\n",
            names.join(", ")
        );
    }
    if report.first_seen.is_empty() {
        out.push_str("_No namespace or source IP new to a known identity._\n\n");
    } else {
        table(
            &mut out,
            &["identity", "what", "value", "first at (UTC)", "requests"],
            report.first_seen.iter().map(|seen| {
                vec![
                    escape(&seen.identity),
                    seen.what.clone(),
                    escape(&seen.value),
                    time(&seen.first_at),
                    seen.requests.to_string(),
                ]
            }),
        );
    }

    let denied = &report.denied;
    let _ = writeln!(out, "## Denied requests\n");
    let _ = writeln!(
        out,
        "{} denied today; {:.1} per day on average over the previous 7 days.\n",
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
        );
    }

    let _ = writeln!(out, "## RBAC changes\n");
    if report.rbac_changes.is_empty() {
        out.push_str("_No RBAC object was written._\n\n");
    } else {
        rbac_table(&mut out, &report.rbac_changes);
        if report.rbac_changes_truncated {
            out.push_str("_(list cut at the row limit; the JSON says so too)_\n\n");
        }
    }
    table_section(&mut out, "RBAC risky grants", &report.rbac_risky_grants);
    table_section(
        &mut out,
        "Unused sensitive grants",
        &report.rbac_unused_grants,
    );
    super::drift_section::markdown(&mut out, &report.rbac_drift);
    table_section(&mut out, "Model status", &report.models);
    super::feedback_section::markdown(&mut out, &report.feedback);

    let ingest = &report.ingest;
    let _ = writeln!(out, "## Ingest health\n");
    if ingest.manifest_available {
        let _ = writeln!(
            out,
            "{} parts written ({} bytes, {} rows); {} live parts hold the day. Commit lag: mean {}, max {}.  ",
            ingest.parts_written,
            ingest.part_bytes,
            ingest.rows_written,
            ingest.parts_for_day,
            seconds(ingest.mean_commit_lag_seconds),
            seconds(ingest.max_commit_lag_seconds)
        );
    } else {
        out.push_str("Manifest not available.  \n");
    }
    let reasons: Vec<String> = ingest
        .quarantined_by_reason
        .iter()
        .map(|(reason, count)| format!("{} {count}", escape(reason)))
        .collect();
    let _ = writeln!(
        out,
        "{} lines quarantined{}.\n",
        ingest.quarantined_total,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );

    let compliance = &report.compliance;
    let _ = writeln!(out, "## Compliance evidence\n");
    let _ = writeln!(out, "### Secret reads\n");
    if compliance.secret_access.is_empty() {
        out.push_str("_No secret was read._\n\n");
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
        );
    }
    let _ = writeln!(
        out,
        "### RBAC changes\n\n{} RBAC writes (listed above).\n",
        compliance.rbac_change_count
    );
    let _ = writeln!(out, "### Incidents and evidence\n");
    if compliance.incident_evidence.is_empty() {
        out.push_str("_No incidents._\n");
    } else {
        table(
            &mut out,
            &["incident", "severity", "identity", "evidence audit IDs"],
            compliance.incident_evidence.iter().map(|evidence| {
                vec![
                    escape(&evidence.incident_id),
                    escape(&evidence.severity),
                    escape(&evidence.identity),
                    escape(&evidence.evidence_audit_ids.join(", ")),
                ]
            }),
        );
    }
    out
}

fn seconds(value: Option<f64>) -> String {
    value
        .map(|seconds| format!("{seconds:.1} s"))
        .unwrap_or_else(|| "n/a".to_string())
}

fn anomaly_lines(out: &mut String, anomaly: &AnomalyEntry) {
    let _ = writeln!(
        out,
        "- **{}** {} (`{}`, {}, score {:.2}) {}–{} UTC",
        anomaly.severity,
        escape(&anomaly.title),
        anomaly.detector.replace('`', ""),
        anomaly.kind,
        anomaly.score,
        anomaly.window_start.format("%H:%M:%S"),
        anomaly.window_end.format("%H:%M:%S")
    );
    for reason in &anomaly.reasons {
        let _ = writeln!(out, "  - {}", escape(reason));
    }
    if !anomaly.evidence_audit_ids.is_empty() {
        let ids: Vec<String> = anomaly
            .evidence_audit_ids
            .iter()
            .map(|id| escape(id))
            .collect();
        let _ = writeln!(out, "  - evidence: {}", ids.join(", "));
    }
}

fn rbac_table(out: &mut String, changes: &[RbacChange]) {
    table(
        out,
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
        changes.iter().map(|change| {
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
                escape(&change.audit_id),
            ]
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_table_breaking_and_link_characters() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(escape("line\nbreak"), "line break");
    }
}
