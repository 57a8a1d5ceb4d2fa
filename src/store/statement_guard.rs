//! The pure half of the query statement check: judging what DuckDB's parser
//! said about a statement (`json_serialize_sql` output) without DuckDB.
//!
//! Design decision: no keyword matching on our side decides anything. DuckDB
//! parses the untrusted text ([`super::query`] asks it); this file only reads
//! the parse tree DuckDB returned and refuses anything that is not a plain
//! read, including data-modifying WITH clauses hidden inside a SELECT. It
//! needs nothing but `serde_json`, so the fuzz crate compiles it on its own
//! (linking DuckDB there would rebuild its C++ with sanitizer flags).

/// What DuckDB's parse tree says about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeVerdict {
    /// A SELECT whose every query node is a read.
    Read,
    /// Not a read-only statement: what it is and why it is refused.
    Refused { what: String, reason: String },
    /// DuckDB could not parse the statement; its message.
    Invalid(String),
    /// The serializer's output is not JSON (DuckDB's fault, not the client's).
    Unreadable(String),
}

/// Judges `serialized`, the output of `json_serialize_sql(sql)`. Only SELECT
/// statements serialize (anything else comes back as an error naming "Only
/// SELECT"), and a SELECT may still carry a data-modifying WITH clause
/// (`WITH x AS (INSERT ... RETURNING *) SELECT ...`), so every query node in
/// the tree must be a read. `sql` is used for messages only.
pub fn judge_parse_tree(sql: &str, serialized: &str) -> TreeVerdict {
    let tree: serde_json::Value = match serde_json::from_str(serialized) {
        Ok(tree) => tree,
        Err(error) => {
            return TreeVerdict::Unreadable(format!("DuckDB's parse tree is not JSON: {error}"));
        }
    };
    if tree["error"].as_bool() == Some(true) {
        let message = tree["error_message"].as_str().unwrap_or_default();
        if message.contains("Only SELECT") {
            return TreeVerdict::Refused {
                what: leading_keyword(sql),
                reason: "only SELECT statements run here; DuckDB parses this as another kind of statement".into(),
            };
        }
        return TreeVerdict::Invalid(format!(
            "{}: {message}",
            tree["error_type"].as_str().unwrap_or("error")
        ));
    }
    if let Some(node) = first_writing_node(&tree) {
        let what = node
            .trim_end_matches("_QUERY_NODE")
            .trim_end_matches("_NODE")
            .replace('_', " ");
        return TreeVerdict::Refused {
            what: format!("{what} inside a query"),
            reason: "data-modifying WITH clauses are not allowed: the query endpoint is read-only"
                .into(),
        };
    }
    TreeVerdict::Read
}

/// Query node types a read-only statement may contain.
pub const READ_QUERY_NODES: [&str; 4] = [
    "SELECT_NODE",
    "SET_OPERATION_NODE",
    "RECURSIVE_CTE_NODE",
    "CTE_NODE",
];

/// The first query node in a serialized parse tree that is not a read
/// (`INSERT_QUERY_NODE`, `DELETE_QUERY_NODE`, ...).
pub fn first_writing_node(tree: &serde_json::Value) -> Option<String> {
    match tree {
        serde_json::Value::Object(fields) => {
            if let Some(serde_json::Value::String(kind)) = fields.get("type")
                && kind.ends_with("_NODE")
                && !READ_QUERY_NODES.contains(&kind.as_str())
            {
                return Some(kind.clone());
            }
            fields.values().find_map(first_writing_node)
        }
        serde_json::Value::Array(items) => items.iter().find_map(first_writing_node),
        _ => None,
    }
}

/// The first SQL keyword of a statement (after comments), for messages only.
pub fn leading_keyword(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment
                .split_once('\n')
                .map(|(_, after)| after)
                .unwrap_or("")
                .trim_start();
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment
                .split_once("*/")
                .map(|(_, after)| after)
                .unwrap_or("")
                .trim_start();
        } else if let Some(inner) = rest.strip_prefix('(') {
            rest = inner.trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|character| character.is_ascii_alphabetic())
        .collect();
    if word.is_empty() {
        "statement".to_string()
    } else {
        format!("{} (not a SELECT)", word.to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_writing_nodes_anywhere_are_refused() {
        let read = r#"{"error":false,"statements":[{"node":{"type":"SELECT_NODE","cte_map":{"map":[]}}}]}"#;
        assert_eq!(judge_parse_tree("SELECT 1", read), TreeVerdict::Read);
        let hidden = r#"{"error":false,"statements":[{"node":{"type":"SELECT_NODE","cte_map":{"map":[{"key":"gone","value":{"query":{"node":{"type":"DELETE_QUERY_NODE"}}}}]}}}]}"#;
        match judge_parse_tree(
            "WITH gone AS (DELETE FROM events RETURNING *) SELECT * FROM gone",
            hidden,
        ) {
            TreeVerdict::Refused { what, .. } => assert_eq!(what, "DELETE inside a query"),
            other => panic!("a DELETE node passed: {other:?}"),
        }
    }

    #[test]
    fn parser_errors_name_the_statement_or_the_problem() {
        let not_select = r#"{"error":true,"error_type":"not implemented","error_message":"Only SELECT statements can be serialized to json!"}"#;
        match judge_parse_tree("/* hi */ (COPY events TO 'x')", not_select) {
            TreeVerdict::Refused { what, .. } => assert_eq!(what, "COPY (not a SELECT)"),
            other => panic!("{other:?}"),
        }
        let syntax = r#"{"error":true,"error_type":"parser","error_message":"syntax error at or near \"FORM\""}"#;
        assert_eq!(
            judge_parse_tree("SELECT * FORM events", syntax),
            TreeVerdict::Invalid("parser: syntax error at or near \"FORM\"".into())
        );
        assert!(matches!(
            judge_parse_tree("SELECT 1", "not json"),
            TreeVerdict::Unreadable(_)
        ));
    }

    #[test]
    fn leading_keyword_skips_comments_and_parentheses() {
        assert_eq!(
            leading_keyword("-- note\n  ( attach 'x'"),
            "ATTACH (not a SELECT)"
        );
        assert_eq!(leading_keyword("/* unterminated"), "statement");
        assert_eq!(leading_keyword(""), "statement");
    }
}
