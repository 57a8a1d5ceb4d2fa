//! Rendering of the feedback section (`crate::feedback::report`) in Markdown
//! and HTML: suppressions about to expire and those that matched most,
//! precision per detector from verdicts, time to triage, the identities with
//! the most benign verdicts, and automatic threshold changes with their reasons.

use super::Result;
use crate::feedback::report::FeedbackSection;
use std::fmt::Write;

fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "n/a".to_string(),
        Some(seconds) if seconds < 120.0 => format!("{seconds:.0} s"),
        Some(seconds) if seconds < 7200.0 => format!("{:.0} min", seconds / 60.0),
        Some(seconds) => format!("{:.1} h", seconds / 3600.0),
    }
}

fn scope(identity: &str, namespace: &Option<String>, source: &Option<String>) -> String {
    let mut text = identity.to_string();
    if let Some(namespace) = namespace {
        text.push_str(&format!(" in {namespace}"));
    }
    if let Some(source) = source {
        text.push_str(&format!(" from {source}"));
    }
    text
}

/// The rows of each table, as plain text (each renderer escapes its own way).
struct Tables {
    expiring: Vec<Vec<String>>,
    top: Vec<Vec<String>>,
    precision: Vec<Vec<String>>,
    identities: Vec<Vec<String>>,
    changes: Vec<Vec<String>>,
    per_day: Vec<Vec<String>>,
}

const EXPIRING_HEADER: [&str; 6] = [
    "expires",
    "detector",
    "for",
    "reason",
    "owner",
    "matched (30 d)",
];
const TOP_HEADER: [&str; 5] = ["detector", "for", "matched (30 d)", "reason", "expires"];
const PRECISION_HEADER: [&str; 4] = ["detector", "true positives", "benign", "precision"];
const IDENTITY_HEADER: [&str; 3] = ["identity", "benign verdicts", "true positives"];
const CHANGE_HEADER: [&str; 2] = ["at", "change"];
const PER_DAY_HEADER: [&str; 4] = ["day", "detector", "alerting", "suppressed"];

fn tables(section: &FeedbackSection) -> Tables {
    Tables {
        expiring: section
            .expiring_suppressions
            .iter()
            .map(|entry| {
                vec![
                    when(&entry.expires_at),
                    entry.detector.clone(),
                    scope(
                        &entry.identity_pattern,
                        &entry.namespace_pattern,
                        &entry.source_pattern,
                    ),
                    entry.reason.clone(),
                    entry.owner.clone(),
                    entry.matched_30d.to_string(),
                ]
            })
            .collect(),
        top: section
            .top_suppressions
            .iter()
            .map(|entry| {
                vec![
                    entry.detector.clone(),
                    scope(
                        &entry.identity_pattern,
                        &entry.namespace_pattern,
                        &entry.source_pattern,
                    ),
                    entry.matched_30d.to_string(),
                    entry.reason.clone(),
                    when(&entry.expires_at),
                ]
            })
            .collect(),
        precision: section
            .precision
            .iter()
            .map(|entry| {
                vec![
                    entry.detector.clone(),
                    entry.true_positives.to_string(),
                    entry.benign.to_string(),
                    format!("{:.0} %", entry.precision * 100.0),
                ]
            })
            .collect(),
        identities: section
            .benign_identities
            .iter()
            .map(|entry| {
                vec![
                    entry.identity.clone(),
                    entry.benign.to_string(),
                    entry.true_positives.to_string(),
                ]
            })
            .collect(),
        changes: section
            .threshold_changes
            .iter()
            .map(|change| vec![when(&change.at), change.reason.clone()])
            .collect(),
        per_day: section
            .alerts_per_day
            .iter()
            .map(|entry| {
                vec![
                    entry.date.to_string(),
                    entry.detector.clone(),
                    entry.alerting.to_string(),
                    entry.suppressed.to_string(),
                ]
            })
            .collect(),
    }
}

fn triage_line(section: &FeedbackSection) -> String {
    let triage = &section.time_to_triage;
    format!(
        "{} of {} incidents of the last 7 days have a verdict; time to triage: median {}, 90th percentile {}. \
         {} anomalies of the day were suppressed (stored and counted, not alerted).",
        triage.triaged,
        triage.incidents,
        duration(triage.median_seconds),
        duration(triage.p90_seconds),
        section.suppressed_anomalies
    )
}

/// The section in Markdown (`## Feedback`).
pub fn markdown(out: &mut String, section: &FeedbackSection) {
    use super::markdown::escape;
    let _ = writeln!(out, "## Feedback\n");
    if !section.available {
        out.push_str("_No triage data in this catalog._\n\n");
        return;
    }
    let _ = writeln!(out, "{}\n", escape(&triage_line(section)));
    let tables = tables(section);
    let mut table = |title: &str, header: &[&str], rows: &[Vec<String>], empty: &str| {
        super::markdown::titled_table(out, title, header, rows, empty);
    };
    table(
        "Suppressions expiring within 7 days",
        &EXPIRING_HEADER,
        &tables.expiring,
        "None.",
    );
    table(
        "Suppressions that matched most",
        &TOP_HEADER,
        &tables.top,
        "No suppression matched in 30 days.",
    );
    table(
        "Precision per detector (from verdicts)",
        &PRECISION_HEADER,
        &tables.precision,
        "No resolved verdicts yet.",
    );
    table(
        "Identities with the most benign verdicts",
        &IDENTITY_HEADER,
        &tables.identities,
        "None.",
    );
    table(
        "Automatic threshold changes (7 days)",
        &CHANGE_HEADER,
        &tables.changes,
        "None.",
    );
    table(
        "Alerts per day and detector",
        &PER_DAY_HEADER,
        &tables.per_day,
        "No anomalies in 8 days.",
    );
}

/// The section in HTML (`<h2 id="feedback">`), with the alerts-per-day chart.
pub fn html(out: &mut String, section: &FeedbackSection, date: chrono::NaiveDate) -> Result<()> {
    use super::html::escape;
    let _ = writeln!(out, "<h2 id=\"feedback\">Feedback</h2>");
    if !section.available {
        out.push_str("<p class=\"na\">No triage data in this catalog.</p>\n");
        return Ok(());
    }
    let _ = writeln!(out, "<p>{}</p>", escape(&triage_line(section)));
    let _ = writeln!(
        out,
        "<div class=\"charts\"><div class=\"chart wide\">{}</div></div>",
        super::charts::alerts_per_day(section, date)?
    );
    let tables = tables(section);
    let mut table =
        |title: &str, header: &[&str], rows: &[Vec<String>], numeric: &[usize], empty: &str| {
            super::html::titled_table(out, title, header, rows, numeric, empty);
        };
    table(
        "Suppressions expiring within 7 days",
        &EXPIRING_HEADER,
        &tables.expiring,
        &[5],
        "None.",
    );
    table(
        "Suppressions that matched most",
        &TOP_HEADER,
        &tables.top,
        &[2],
        "No suppression matched in 30 days.",
    );
    table(
        "Precision per detector (from verdicts)",
        &PRECISION_HEADER,
        &tables.precision,
        &[1, 2, 3],
        "No resolved verdicts yet.",
    );
    table(
        "Identities with the most benign verdicts",
        &IDENTITY_HEADER,
        &tables.identities,
        &[1, 2],
        "None.",
    );
    table(
        "Automatic threshold changes (7 days)",
        &CHANGE_HEADER,
        &tables.changes,
        &[],
        "None.",
    );
    table(
        "Alerts per day and detector",
        &PER_DAY_HEADER,
        &tables.per_day,
        &[2, 3],
        "No anomalies in 8 days.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::report::{SuppressionUse, ThresholdChangeEntry};

    #[test]
    fn hostile_text_is_escaped_in_both_renderings() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T09:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let section = FeedbackSection {
            available: true,
            expiring_suppressions: vec![SuppressionUse {
                id: "sup-1".into(),
                detector: "workload.exec".into(),
                identity_pattern: "<script>alert(1)</script>".into(),
                namespace_pattern: None,
                source_pattern: None,
                reason: "a | b".into(),
                owner: "o".into(),
                expires_at: at,
                origin: "config".into(),
                matched_30d: 3,
            }],
            threshold_changes: vec![ThresholdChangeEntry {
                at,
                detector: "workload.exec".into(),
                identity: "*".into(),
                old_min_score: 0.0,
                new_min_score: 0.5,
                reason: "threshold of workload.exec for every identity raised from any to medium (0.50) after 3 benign verdicts on 3 identities".into(),
            }],
            ..FeedbackSection::default()
        };
        let mut html_text = String::new();
        html(&mut html_text, &section, at.date_naive()).expect("html");
        assert!(!html_text.contains("<script>"), "{html_text}");
        assert!(html_text.contains("&lt;script&gt;"));
        assert!(html_text.contains("raised from any to medium"));
        let mut markdown_text = String::new();
        markdown(&mut markdown_text, &section);
        assert!(markdown_text.contains("a \\| b"), "{markdown_text}");
        assert!(markdown_text.contains("### Automatic threshold changes"));
    }
}
