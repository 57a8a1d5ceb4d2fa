//! Canned investigations: `sql/investigations/*.sql`, built into the binary.
//!
//! Each file is one SELECT with named parameters (`$namespace`), described by
//! its header comments:
//!
//! ```sql
//! -- What it answers (first comment line).
//! -- @param namespace | description                      (required)
//! -- @param since = 1970-01-01 00:00:00 | description    (with a default)
//! ```
//!
//! Values are bound by DuckDB on the server (`QueryRequest.parameters`),
//! never pasted into the text, so a value cannot change the statement.

use super::ApiError;
use std::collections::BTreeMap;

/// The shipped files, by name (the file stem).
pub const SOURCES: [(&str, &str); 6] = [
    (
        "denied-by-identity",
        include_str!("../../sql/investigations/denied-by-identity.sql"),
    ),
    (
        "exec-sessions",
        include_str!("../../sql/investigations/exec-sessions.sql"),
    ),
    (
        "first-seen-ips",
        include_str!("../../sql/investigations/first-seen-ips.sql"),
    ),
    (
        "identity-timeline",
        include_str!("../../sql/investigations/identity-timeline.sql"),
    ),
    (
        "rbac-changes",
        include_str!("../../sql/investigations/rbac-changes.sql"),
    ),
    (
        "secrets-in-namespace",
        include_str!("../../sql/investigations/secrets-in-namespace.sql"),
    ),
];

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub default: Option<String>,
    pub description: String,
}

/// One investigation.
#[derive(Debug, Clone)]
pub struct Investigation {
    pub name: String,
    pub description: String,
    pub parameters: Vec<Parameter>,
    pub sql: String,
}

impl Investigation {
    pub fn parse(name: &str, source: &str) -> Investigation {
        let mut description = String::new();
        let mut parameters = Vec::new();
        for line in source.lines() {
            let Some(comment) = line.trim().strip_prefix("--") else {
                break;
            };
            let comment = comment.trim();
            if let Some(declaration) = comment.strip_prefix("@param") {
                // "name = default | description" or "name | description"
                let (head, text) = declaration.split_once('|').unwrap_or((declaration, ""));
                let (name, default) = match head.split_once('=') {
                    Some((name, default)) => (name.trim(), Some(default.trim().to_string())),
                    None => (head.trim(), None),
                };
                parameters.push(Parameter {
                    name: name.to_string(),
                    default,
                    description: text.trim().to_string(),
                });
            } else if description.is_empty() {
                description = comment.to_string();
            }
        }
        Investigation {
            name: name.to_string(),
            description,
            parameters,
            sql: source.to_string(),
        }
    }

    /// The parameter values to send: given ones, then defaults; an unknown
    /// or missing one is an error naming it.
    pub fn bind(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        for name in given.keys() {
            if !self
                .parameters
                .iter()
                .any(|parameter| &parameter.name == name)
            {
                return Err(ApiError::InvalidArgument(format!(
                    "investigation {} has no parameter {name:?} (it takes: {})",
                    self.name,
                    self.parameter_names()
                )));
            }
        }
        let mut bound = BTreeMap::new();
        for parameter in &self.parameters {
            let value = given
                .get(&parameter.name)
                .cloned()
                .or_else(|| parameter.default.clone())
                .ok_or_else(|| {
                    ApiError::InvalidArgument(format!(
                        "investigation {} needs --param {}=VALUE ({})",
                        self.name, parameter.name, parameter.description
                    ))
                })?;
            bound.insert(parameter.name.clone(), value);
        }
        Ok(bound)
    }

    fn parameter_names(&self) -> String {
        self.parameters
            .iter()
            .map(|parameter| parameter.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every shipped investigation, by name.
pub fn all() -> Vec<Investigation> {
    SOURCES
        .iter()
        .map(|(name, source)| Investigation::parse(name, source))
        .collect()
}

/// One investigation by name.
pub fn find(name: &str) -> Result<Investigation, ApiError> {
    all()
        .into_iter()
        .find(|investigation| investigation.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = SOURCES.iter().map(|(name, _)| *name).collect();
            ApiError::InvalidArgument(format!(
                "no investigation {name:?}; known: {}",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameter_headers() {
        let investigation = find("secrets-in-namespace").expect("shipped");
        assert!(investigation.description.starts_with("Who read"));
        assert_eq!(investigation.parameters.len(), 3);
        assert_eq!(investigation.parameters[0].name, "namespace");
        assert_eq!(investigation.parameters[0].default, None);
        assert_eq!(
            investigation.parameters[1].default.as_deref(),
            Some("1970-01-01 00:00:00")
        );
        assert_eq!(
            investigation.parameters[1].description,
            "start of the period (UTC, inclusive)"
        );
    }

    #[test]
    fn every_declared_parameter_is_used_and_every_used_one_declared() {
        let placeholder = regex::Regex::new(r"\$([a-z_]+)").expect("regex");
        for investigation in all() {
            let used: std::collections::BTreeSet<String> = placeholder
                .captures_iter(&investigation.sql)
                .map(|capture| capture[1].to_string())
                .collect();
            let declared: std::collections::BTreeSet<String> = investigation
                .parameters
                .iter()
                .map(|parameter| parameter.name.clone())
                .collect();
            assert_eq!(used, declared, "{}", investigation.name);
            assert!(
                !investigation.description.is_empty(),
                "{}",
                investigation.name
            );
        }
    }

    #[test]
    fn binding_fills_defaults_and_names_what_is_missing() {
        let investigation = find("secrets-in-namespace").expect("shipped");
        let missing = investigation
            .bind(&BTreeMap::new())
            .expect_err("namespace is required");
        assert!(missing.to_string().contains("namespace"));
        let given = BTreeMap::from([("namespace".to_string(), "kube-system".to_string())]);
        let bound = investigation.bind(&given).expect("bound");
        assert_eq!(bound["until"], "9999-12-31 00:00:00");
        let unknown = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(investigation.bind(&unknown).is_err());
    }
}
