//! The query statement guard's judge of DuckDB's parse tree, on arbitrary
//! input. The input is `sql NUL tree`: the statement text (messages only)
//! and what `json_serialize_sql` returned for it; the seeds are real
//! DuckDB trees of the hostile statements in tests/api_hostile.rs. The
//! judge must never panic, must accept a tree only when every query node in
//! it is a read (checked here by an independent walk), and must keep
//! refusing when a writing node is grafted anywhere into a tree it accepted
//! (a data-modifying WITH clause hidden at any depth).
#![no_main]

use auditlens_fuzz::store::statement_guard::{READ_QUERY_NODES, TreeVerdict, judge_parse_tree, leading_keyword};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every `"type": "..._NODE"` string in the tree, without recursion.
fn node_types(tree: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![tree];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(kind)) = fields.get("type") {
                    if kind.ends_with("_NODE") {
                        found.push(kind.clone());
                    }
                }
                pending.extend(fields.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

/// Inserts `node` into the `choice`-th object of the tree (depth first).
/// Returns whether there was such an object.
fn graft(value: &mut Value, choice: &mut usize, node: &Value) -> bool {
    match value {
        Value::Object(fields) => {
            if *choice == 0 {
                fields.insert(format!("graft{}", fields.len()), node.clone());
                return true;
            }
            *choice -= 1;
            fields.values_mut().any(|child| graft(child, choice, node))
        }
        Value::Array(items) => items.iter_mut().any(|child| graft(child, choice, node)),
        _ => false,
    }
}

fn object_count(tree: &Value) -> usize {
    let mut count = 0;
    let mut pending = vec![tree];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                count += 1;
                pending.extend(fields.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    count
}

fuzz_target!(|input: &[u8]| {
    let split = input.iter().position(|&byte| byte == 0).unwrap_or(input.len());
    let sql = String::from_utf8_lossy(&input[..split]);
    let serialized = String::from_utf8_lossy(input.get(split + 1..).unwrap_or(&[]));

    let keyword = leading_keyword(&sql);
    assert!(
        keyword == "statement"
            || keyword
                .strip_suffix(" (not a SELECT)")
                .is_some_and(|word| !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_uppercase())),
        "{keyword:?}"
    );

    let verdict = judge_parse_tree(&sql, &serialized);
    let Ok(tree) = serde_json::from_str::<Value>(&serialized) else {
        assert!(matches!(verdict, TreeVerdict::Unreadable(_)), "{verdict:?}");
        return;
    };
    let types = node_types(&tree);
    let writes: Vec<&String> = types.iter().filter(|kind| !READ_QUERY_NODES.contains(&kind.as_str())).collect();
    match &verdict {
        TreeVerdict::Read => {
            assert_ne!(tree["error"], true, "an error tree was accepted");
            assert!(writes.is_empty(), "accepted a tree holding {writes:?}");
        }
        TreeVerdict::Refused { what, reason } => {
            assert!(!what.is_empty() && !reason.is_empty());
            assert!(tree["error"] == true || !writes.is_empty(), "refused a read-only tree: {what}");
        }
        TreeVerdict::Invalid(message) => {
            assert_eq!(tree["error"], true, "{message}");
        }
        TreeVerdict::Unreadable(message) => panic!("JSON judged unreadable: {message}"),
    }
    // Graft a writing node into an accepted tree: it must then be refused
    // (or, if the graft pushed the tree past serde_json's depth limit, be
    // unreadable, which refuses the query too).
    let objects = object_count(&tree);
    if verdict == TreeVerdict::Read && objects > 0 {
        let mut choice = (sql.len() + serialized.len()) % objects;
        let mut grafted = tree;
        let writer = serde_json::json!({"type": "INSERT_QUERY_NODE", "select_statement": {}});
        assert!(graft(&mut grafted, &mut choice, &writer));
        let text = serde_json::to_string(&grafted).expect("serializes");
        match judge_parse_tree(&sql, &text) {
            TreeVerdict::Refused { what, .. } => assert_eq!(what, "INSERT inside a query"),
            TreeVerdict::Unreadable(_) => {}
            other => panic!("a grafted INSERT node passed: {other:?}\n{text}"),
        }
    }
});
