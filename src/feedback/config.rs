//! `[feedback]` in the config file: suppressions written down by hand, the
//! default suppression lifetime, and the bounds of automatic threshold changes
//! for the layers that have no model spec (rules and novelty; models take
//! theirs from `models/*.toml`, `[feedback]`).
//!
//! ```toml
//! [feedback]
//! default_suppression_days = 30
//!
//! [[feedback.suppressions]]
//! detector = "admission.webhook_changed"
//! identity = "system:serviceaccount:cert-manager:cert-manager-cainjector"
//! reason = "cainjector patches caBundle into webhook configurations"
//! owner = "platform-team"
//! expires = "2027-01-31"          # optional: default created + default_suppression_days
//! ```

use serde::{Deserialize, Serialize};

/// `[feedback]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Lifetime of a suppression given without an expiry (renewal needed after).
    pub default_suppression_days: u32,
    pub suppressions: Vec<SuppressionConfig>,
    pub thresholds: ThresholdConfig,
}

impl Default for FeedbackConfig {
    fn default() -> FeedbackConfig {
        FeedbackConfig {
            default_suppression_days: 30,
            suppressions: Vec::new(),
            thresholds: ThresholdConfig::default(),
        }
    }
}

/// One `[[feedback.suppressions]]`. Detector, identity, reason and owner are
/// required: a security tool does not silence anything by accident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SuppressionConfig {
    /// A detector (`workload.exec`) or a glob (`rbac.*`).
    pub detector: String,
    /// Identity glob (`system:serviceaccount:ci:*`); `*` for everyone, said explicitly.
    pub identity: String,
    /// Namespace glob: every evidence request must be in a matching namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Source address glob: every evidence request must come from a matching address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub reason: String,
    pub owner: String,
    /// RFC 3339 time or `YYYY-MM-DD` (a quoted string). Default: when the
    /// entry was first loaded plus `default_suppression_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// `[feedback.thresholds]`: when and how far thresholds move on their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdConfig {
    /// Off: verdicts are recorded, thresholds never move.
    pub enabled: bool,
    /// Benign verdicts (above the current threshold) before a threshold moves.
    pub benign_verdicts_per_step: u32,
    /// A detector-wide change needs benign verdicts on this many identities.
    pub min_identities_for_detector: u32,
    /// Rules: the highest minimum score (0.5 = medium: only `info`/`low`
    /// hits can ever be silenced automatically).
    pub rule_bound: f64,
    /// Novelty: the highest minimum combined score.
    pub novelty_bound: f64,
    /// Novelty: how far above the highest benign score a threshold moves.
    pub novelty_step: f64,
}

impl Default for ThresholdConfig {
    fn default() -> ThresholdConfig {
        ThresholdConfig {
            enabled: true,
            benign_verdicts_per_step: 3,
            min_identities_for_detector: 3,
            rule_bound: 0.5,
            novelty_bound: 0.85,
            novelty_step: 0.05,
        }
    }
}

impl FeedbackConfig {
    /// Checks what serde cannot: non-empty fields, parseable expiries, sane bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_suppression_days == 0 || self.default_suppression_days > 366 {
            return Err(format!(
                "feedback.default_suppression_days {} must be 1 to 366",
                self.default_suppression_days
            ));
        }
        for (index, entry) in self.suppressions.iter().enumerate() {
            let name = format!("[[feedback.suppressions]] #{}", index + 1);
            for (field, value) in [
                ("detector", &entry.detector),
                ("identity", &entry.identity),
                ("reason", &entry.reason),
                ("owner", &entry.owner),
            ] {
                if value.trim().is_empty() {
                    return Err(format!("{name}: {field} must not be empty"));
                }
            }
            if let Some(expires) = &entry.expires {
                super::parse_time(expires).map_err(|error| format!("{name}: expires: {error}"))?;
            }
        }
        let thresholds = &self.thresholds;
        if thresholds.benign_verdicts_per_step == 0 || thresholds.min_identities_for_detector == 0 {
            return Err(
                "feedback.thresholds: benign_verdicts_per_step and min_identities_for_detector must be positive"
                    .into(),
            );
        }
        for (name, value) in [
            ("rule_bound", thresholds.rule_bound),
            ("novelty_bound", thresholds.novelty_bound),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "feedback.thresholds.{name} {value} must be in [0, 1]"
                ));
            }
        }
        if !(thresholds.novelty_step > 0.0 && thresholds.novelty_step <= 0.5) {
            return Err(format!(
                "feedback.thresholds.novelty_step {} must be in (0, 0.5]",
                thresholds.novelty_step
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppression_needs_its_reason_and_owner_and_unknown_keys_are_refused() {
        let parsed: FeedbackConfig = toml::from_str(
            "[[suppressions]]\ndetector = \"workload.exec\"\nidentity = \"*@example.com\"\n\
             reason = \"developers debug their pods\"\nowner = \"platform\"\nexpires = \"2027-01-31\"\n",
        )
        .expect("valid");
        parsed.validate().expect("valid");
        assert_eq!(parsed.default_suppression_days, 30);
        assert!(
            toml::from_str::<FeedbackConfig>(
                "[[suppressions]]\ndetector = \"workload.exec\"\nidentity = \"*\"\nowner = \"me\"\n"
            )
            .is_err(),
            "reason is required"
        );
        assert!(
            toml::from_str::<FeedbackConfig>(
                "[[suppressions]]\ndetector = \"d\"\nidentity = \"*\"\nreason = \"r\"\nowner = \"o\"\nexpiry = \"2027-01-01\"\n"
            )
            .is_err(),
            "a typo is refused"
        );
        let blank: FeedbackConfig = toml::from_str(
            "[[suppressions]]\ndetector = \"d\"\nidentity = \"*\"\nreason = \" \"\nowner = \"o\"\n",
        )
        .expect("parses");
        assert!(blank.validate().is_err(), "a blank reason is refused");
        let bad_time: FeedbackConfig = toml::from_str(
            "[[suppressions]]\ndetector = \"d\"\nidentity = \"*\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"next week\"\n",
        )
        .expect("parses");
        assert!(bad_time.validate().is_err());
    }
}
