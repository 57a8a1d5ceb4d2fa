//! Rendering of the RBAC drift section (`crate::rbac::drift`) in Markdown
//! and HTML: the snapshot versions compared, the grants that appeared and
//! went away since last week, and each identity's over-privilege score with
//! its change over the week (a chart in HTML).

use super::Result;
use crate::rbac::drift::{GrantLine, IdentityPrivilege, RbacDrift};
use chrono::NaiveDate;
use std::fmt::Write;

const GRANT_HEADER: [&str; 5] = ["subject", "rule", "where", "granted by", "sensitive"];
const PRIVILEGE_HEADER: [&str; 6] = [
    "identity",
    "rules held",
    "used (7 d)",
    "score",
    "score a week ago",
    "change",
];

fn grant_rows(grants: &[GrantLine]) -> Vec<Vec<String>> {
    grants
        .iter()
        .map(|grant| {
            vec![
                grant.subject.clone(),
                grant.rule.clone(),
                grant
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "cluster-wide".to_string()),
                format!("{} → {}", grant.binding, grant.role),
                grant.sensitive.join(", "),
            ]
        })
        .collect()
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |value| format!("{value:.2}"))
}

fn privilege_rows(identities: &[IdentityPrivilege]) -> Vec<Vec<String>> {
    identities
        .iter()
        .map(|identity| {
            let last = identity.last();
            let now = last.and_then(|day| day.score);
            let before = identity.first().and_then(|day| day.score);
            let change = match (now, before) {
                (Some(now), Some(before)) => format!("{:+.2}", now - before),
                (Some(_), None) => "newly held".to_string(),
                (None, Some(_)) => "no longer held".to_string(),
                (None, None) => String::new(),
            };
            vec![
                identity.identity.clone(),
                last.map(|day| day.granted_rules.to_string())
                    .unwrap_or_default(),
                last.map(|day| day.used_rules.to_string())
                    .unwrap_or_default(),
                score(now),
                score(before),
                change,
            ]
        })
        .collect()
}

fn version_line(drift: &RbacDrift) -> String {
    let describe = |version: &Option<crate::rbac::drift::VersionInForce>| match version {
        Some(version) => format!(
            "version {} (taken {}, from {})",
            version.version, version.taken_at, version.source
        ),
        None => "none".to_string(),
    };
    let changes = if drift.baseline.is_none() {
        "no snapshot was stored a week earlier, so there is nothing to compare".to_string()
    } else {
        format!(
            "{} grants are new and {} were removed",
            drift.new_grant_count, drift.removed_grant_count
        )
    };
    format!(
        "RBAC in force at the day's end: {}; a week earlier: {}. Since then {changes}. \
         {} identities held rules; score = rules used by allowed requests of the trailing 7 days / rules held \
         (1.00 is least privilege), most unused rules first.",
        describe(&drift.current),
        describe(&drift.baseline),
        drift.identities_scored
    )
}

fn more(shown: usize, total: u64) -> Option<String> {
    (total > shown as u64).then(|| format!("{shown} of {total} shown."))
}

/// The section in Markdown (`## RBAC drift`).
pub fn markdown(out: &mut String, drift: &RbacDrift) {
    use super::markdown::{escape, titled_table};
    let _ = writeln!(out, "## RBAC drift\n");
    if !drift.available {
        out.push_str(
            "_No RBAC snapshot stored for these 8 days (`auditlens rbac snapshot save`)._\n\n",
        );
        return;
    }
    let _ = writeln!(out, "{}\n", escape(&version_line(drift)));
    titled_table(
        out,
        "New grants since last week",
        &GRANT_HEADER,
        &grant_rows(&drift.new_grants),
        "None.",
    );
    if let Some(note) = more(drift.new_grants.len(), drift.new_grant_count) {
        let _ = writeln!(out, "_{note}_\n");
    }
    titled_table(
        out,
        "Removed grants since last week",
        &GRANT_HEADER,
        &grant_rows(&drift.removed_grants),
        "None.",
    );
    if let Some(note) = more(drift.removed_grants.len(), drift.removed_grant_count) {
        let _ = writeln!(out, "_{note}_\n");
    }
    titled_table(
        out,
        "Over-privilege per identity",
        &PRIVILEGE_HEADER,
        &privilege_rows(&drift.over_privilege),
        "No identity held RBAC rules.",
    );
}

/// The section in HTML (`<h2 id="rbac-drift">`), with the score chart.
pub fn html(out: &mut String, drift: &RbacDrift, date: NaiveDate) -> Result<()> {
    use super::html::{escape, titled_table};
    let _ = writeln!(out, "<h2 id=\"rbac-drift\">RBAC drift</h2>");
    if !drift.available {
        out.push_str(
            "<p class=\"na\">No RBAC snapshot stored for these 8 days (<code>auditlens rbac snapshot save</code>).</p>\n",
        );
        return Ok(());
    }
    let _ = writeln!(out, "<p>{}</p>", escape(&version_line(drift)));
    let _ = writeln!(
        out,
        "<div class=\"charts\"><div class=\"chart wide\">{}</div></div>",
        super::charts::over_privilege_trend(drift, date)?
    );
    titled_table(
        out,
        "New grants since last week",
        &GRANT_HEADER,
        &grant_rows(&drift.new_grants),
        &[],
        "None.",
    );
    if let Some(note) = more(drift.new_grants.len(), drift.new_grant_count) {
        let _ = writeln!(out, "<p class=\"muted\">{note}</p>");
    }
    titled_table(
        out,
        "Removed grants since last week",
        &GRANT_HEADER,
        &grant_rows(&drift.removed_grants),
        &[],
        "None.",
    );
    if let Some(note) = more(drift.removed_grants.len(), drift.removed_grant_count) {
        let _ = writeln!(out, "<p class=\"muted\">{note}</p>");
    }
    titled_table(
        out,
        "Over-privilege per identity",
        &PRIVILEGE_HEADER,
        &privilege_rows(&drift.over_privilege),
        &[1, 2, 3, 4, 5],
        "No identity held RBAC rules.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::drift::{PrivilegeDay, VersionInForce};

    fn drift() -> RbacDrift {
        let date = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        RbacDrift {
            available: true,
            current: Some(VersionInForce {
                version: 2,
                taken_at: "2026-11-25T10:00:00.000000Z".into(),
                source: "rbac.json".into(),
            }),
            baseline: Some(VersionInForce {
                version: 1,
                taken_at: "2026-11-10T10:00:00.000000Z".into(),
                source: "rbac.json".into(),
            }),
            new_grant_count: 3,
            removed_grant_count: 0,
            new_grants: vec![GrantLine {
                subject: "User <script>alert(1)</script>".into(),
                binding: "ClusterRoleBinding/x|y".into(),
                role: "ClusterRole/secret-reader".into(),
                namespace: None,
                rule: "get secrets (apiGroups \"\")".into(),
                sensitive: vec!["secrets".into()],
            }],
            removed_grants: Vec::new(),
            identities_scored: 1,
            over_privilege: vec![IdentityPrivilege {
                identity: "alice".into(),
                days: (0..8)
                    .map(|index| PrivilegeDay {
                        date: date - chrono::Duration::days(7 - index),
                        granted_rules: if index < 7 { 1 } else { 2 },
                        used_rules: 1,
                        score: Some(if index < 7 { 1.0 } else { 0.5 }),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn both_renderings_list_changes_scores_and_escape_names() {
        let drift = drift();
        let date = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let mut page = String::new();
        html(&mut page, &drift, date).expect("html");
        assert!(!page.contains("<script>alert"), "escaped");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("<svg"), "the score chart");
        assert!(page.contains("1 of 3 shown."));
        assert!(page.contains("<td class=\"num\">-0.50</td>"));
        let mut markdown = String::new();
        super::markdown(&mut markdown, &drift);
        assert!(markdown.contains("## RBAC drift"));
        assert!(
            markdown.contains("x\\|y"),
            "pipes escaped in Markdown tables"
        );
        assert!(markdown.contains("| alice | 2 | 1 | 0.50 | 1.00 | -0.50 |"));
        assert!(markdown.contains("3 grants are new and 0 were removed"));

        let mut empty = String::new();
        super::markdown(&mut empty, &RbacDrift::default());
        assert!(empty.contains("No RBAC snapshot stored"));
    }
}
