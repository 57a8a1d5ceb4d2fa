//! Webhook vs ValidatingAdmissionPolicy: the same verdict on the same objects.
//!
//! The exported CEL is evaluated here by a small interpreter of exactly the
//! CEL subset the exporter emits (`has`, `exists`, `in`, `==`, `!`, `&&`,
//! `||`, field selection, string lists). What this proves: the exported
//! expressions, read with CEL's semantics for that subset, decide like the
//! Rust policies on every object of the corpus and on generated ones. What
//! it does not prove: that the API server's cel-go agrees with this
//! interpreter (see docs/RBAC.md).

use auditlens::rbac::config::{GuardConfig, RbacConfig};
use auditlens::rbac::guard::{Guard, OBJECT_POLICIES, evaluate_object, export_policies_yaml};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

// ---------------- a CEL-subset interpreter ----------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Vec<Token> {
    let characters: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if character.is_whitespace() {
            index += 1;
        } else if character == '\'' {
            let mut value = String::new();
            index += 1;
            while characters[index] != '\'' {
                if characters[index] == '\\' {
                    index += 1;
                }
                value.push(characters[index]);
                index += 1;
            }
            index += 1;
            tokens.push(Token::Str(value));
        } else if character.is_alphanumeric() || character == '_' {
            let start = index;
            while index < characters.len()
                && (characters[index].is_alphanumeric() || characters[index] == '_')
            {
                index += 1;
            }
            tokens.push(Token::Ident(characters[start..index].iter().collect()));
        } else {
            let two: String = characters[index..(index + 2).min(characters.len())]
                .iter()
                .collect();
            let symbol = match two.as_str() {
                "&&" => "&&",
                "||" => "||",
                "==" => "==",
                "!=" => "!=",
                _ => match character {
                    '!' => "!",
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    ',' => ",",
                    '.' => ".",
                    other => panic!("unexpected character {other:?} in CEL"),
                },
            };
            index += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    tokens
}

#[derive(Debug, Clone)]
enum Expr {
    Ident(String),
    Str(String),
    List(Vec<Expr>),
    Select(Box<Expr>, String),
    Has(Box<Expr>, String),
    Exists(Box<Expr>, String, Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Equals(Box<Expr>, Box<Expr>, bool),
    In(Box<Expr>, Box<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }
    fn next(&mut self) -> Token {
        let token = self.tokens[self.position].clone();
        self.position += 1;
        token
    }
    fn expect(&mut self, symbol: &'static str) {
        assert_eq!(self.next(), Token::Symbol(symbol));
    }
    fn is(&self, symbol: &'static str) -> bool {
        self.peek() == Some(&Token::Symbol(symbol))
    }
    fn or(&mut self) -> Expr {
        let mut left = self.and();
        while self.is("||") {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()));
        }
        left
    }
    fn and(&mut self) -> Expr {
        let mut left = self.unary();
        while self.is("&&") {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.unary()));
        }
        left
    }
    fn unary(&mut self) -> Expr {
        if self.is("!") {
            self.next();
            return Expr::Not(Box::new(self.unary()));
        }
        let left = self.postfix();
        if self.is("==") || self.is("!=") {
            let negate = self.next() == Token::Symbol("!=");
            return Expr::Equals(Box::new(left), Box::new(self.postfix()), negate);
        }
        if self.peek() == Some(&Token::Ident("in".into())) {
            self.next();
            return Expr::In(Box::new(left), Box::new(self.postfix()));
        }
        left
    }
    fn postfix(&mut self) -> Expr {
        let mut expression = self.primary();
        while self.is(".") {
            self.next();
            let Token::Ident(field) = self.next() else {
                panic!("field name expected")
            };
            if field == "exists" && self.is("(") {
                self.next();
                let Token::Ident(variable) = self.next() else {
                    panic!("variable expected")
                };
                self.expect(",");
                let body = self.or();
                self.expect(")");
                expression = Expr::Exists(Box::new(expression), variable, Box::new(body));
            } else {
                expression = Expr::Select(Box::new(expression), field);
            }
        }
        expression
    }
    fn primary(&mut self) -> Expr {
        match self.next() {
            Token::Str(value) => Expr::Str(value),
            Token::Symbol("(") => {
                let inner = self.or();
                self.expect(")");
                inner
            }
            Token::Symbol("[") => {
                let mut items = Vec::new();
                while !self.is("]") {
                    items.push(self.or());
                    if self.is(",") {
                        self.next();
                    }
                }
                self.next();
                Expr::List(items)
            }
            Token::Ident(name) if name == "has" => {
                self.expect("(");
                let Expr::Select(target, field) = self.postfix() else {
                    panic!("has() needs a field selection")
                };
                self.expect(")");
                Expr::Has(target, field)
            }
            Token::Ident(name) => Expr::Ident(name),
            other => panic!("unexpected token {other:?}"),
        }
    }
}

fn parse(text: &str) -> Expr {
    let mut parser = Parser {
        tokens: tokenize(text),
        position: 0,
    };
    let expression = parser.or();
    assert_eq!(
        parser.position,
        parser.tokens.len(),
        "trailing tokens in {text}"
    );
    expression
}

/// CEL evaluation; `Err` is a CEL runtime error (e.g. no such key).
fn evaluate(expression: &Expr, scope: &[(String, Value)]) -> Result<Value, String> {
    let boolean = |value: Value| {
        value
            .as_bool()
            .ok_or_else(|| format!("not a bool: {value}"))
    };
    Ok(match expression {
        Expr::Ident(name) => scope
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .ok_or(format!("undeclared {name}"))?,
        Expr::Str(value) => Value::String(value.clone()),
        Expr::List(items) => Value::Array(
            items
                .iter()
                .map(|item| evaluate(item, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Select(target, field) => {
            let target = evaluate(target, scope)?;
            target
                .get(field)
                .filter(|value| !value.is_null())
                .cloned()
                .ok_or(format!("no such key: {field}"))?
        }
        Expr::Has(target, field) => Value::Bool(
            evaluate(target, scope)?
                .get(field)
                .is_some_and(|value| !value.is_null()),
        ),
        Expr::Exists(target, variable, body) => {
            let Value::Array(items) = evaluate(target, scope)? else {
                return Err("exists on a non-list".into());
            };
            let mut found = false;
            for item in items {
                let mut inner = scope.to_vec();
                inner.push((variable.clone(), item));
                if boolean(evaluate(body, &inner)?)? {
                    found = true;
                    break;
                }
            }
            Value::Bool(found)
        }
        Expr::Not(inner) => Value::Bool(!boolean(evaluate(inner, scope)?)?),
        Expr::And(left, right) => {
            Value::Bool(boolean(evaluate(left, scope)?)? && boolean(evaluate(right, scope)?)?)
        }
        Expr::Or(left, right) => {
            Value::Bool(boolean(evaluate(left, scope)?)? || boolean(evaluate(right, scope)?)?)
        }
        Expr::Equals(left, right, negate) => {
            Value::Bool((evaluate(left, scope)? == evaluate(right, scope)?) != *negate)
        }
        Expr::In(item, list) => {
            let item = evaluate(item, scope)?;
            let Value::Array(items) = evaluate(list, scope)? else {
                return Err("in on a non-list".into());
            };
            Value::Bool(items.contains(&item))
        }
    })
}

// ---------------- the exported policies ----------------

struct ExportedPolicy {
    id: String,
    resources: Vec<String>,
    validation: Expr,
    match_condition: Expr,
}

fn exported_policies() -> Vec<ExportedPolicy> {
    let yaml = export_policies_yaml(&GuardConfig::default(), &RbacConfig::default());
    let mut policies = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&yaml) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(document).expect("yaml");
        let json = serde_json::to_value(&value).expect("json");
        if json["kind"] != "ValidatingAdmissionPolicy" {
            continue;
        }
        let spec = &json["spec"];
        policies.push(ExportedPolicy {
            id: json["metadata"]["annotations"]["auditlens.io/policy"]
                .as_str()
                .expect("id")
                .to_string(),
            resources: spec["matchConstraints"]["resourceRules"][0]["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(|resource| resource.as_str().expect("text").to_string())
                .collect(),
            validation: parse(
                spec["validations"][0]["expression"]
                    .as_str()
                    .expect("expression"),
            ),
            match_condition: parse(
                spec["matchConditions"][0]["expression"]
                    .as_str()
                    .expect("expression"),
            ),
        });
    }
    policies
}

fn resource_of(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

/// The ids the ValidatingAdmissionPolicies reject the object with.
fn cel_verdict(
    policies: &[ExportedPolicy],
    kind: &str,
    namespace: &str,
    object: &Value,
) -> BTreeSet<String> {
    let request = serde_json::json!({"namespace": namespace, "userInfo": {"username": "alice", "groups": ["system:authenticated"]}});
    let scope = vec![
        ("object".to_string(), object.clone()),
        ("request".to_string(), request),
    ];
    policies
        .iter()
        .filter(|policy| policy.resources.contains(&resource_of(kind)))
        // A CEL runtime error fails closed (failurePolicy: Fail), i.e. rejects.
        .filter(|policy| {
            evaluate(&policy.validation, &scope)
                .map(|value| value == Value::Bool(false))
                .unwrap_or(true)
        })
        .map(|policy| policy.id.clone())
        .collect()
}

fn rust_verdict(kind: &str, namespace: &str, object: &Value) -> BTreeSet<String> {
    evaluate_object(kind, namespace, object, &RbacConfig::default(), None, &[])
        .expect("valid object")
        .into_iter()
        .map(|violation| violation.policy.to_string())
        .collect()
}

fn corpus() -> Vec<(String, String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rbac");
    let mut objects = Vec::new();
    for file in [
        "risky/snapshot.yaml",
        "least-privilege/snapshot.yaml",
        "authorizer-fixture.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("testdata");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(document).expect("yaml");
            let json = serde_json::to_value(&value).expect("json");
            let items = if json["kind"] == "List" {
                json["items"].as_array().expect("items").clone()
            } else {
                vec![json]
            };
            for item in items {
                let kind = item["kind"].as_str().unwrap_or("").to_string();
                if matches!(
                    kind.as_str(),
                    "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
                ) {
                    let namespace = item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    objects.push((kind, namespace, item));
                }
            }
        }
    }
    objects
}

#[test]
fn interpreter_sanity() {
    let scope = vec![(
        "object".to_string(),
        serde_json::json!({"a": ["x", "y"], "b": "y"}),
    )];
    let run = |text: &str| evaluate(&parse(text), &scope);
    assert_eq!(
        run("object.a.exists(v, v == object.b)"),
        Ok(Value::Bool(true))
    );
    assert_eq!(run("object.b in ['x']"), Ok(Value::Bool(false)));
    assert_eq!(
        run("!has(object.c) && has(object.a)"),
        Ok(Value::Bool(true))
    );
    assert!(run("object.c == 'x'").is_err());
}

#[test]
fn every_object_policy_is_exported_with_an_expression() {
    let policies = exported_policies();
    let ids: BTreeSet<&str> = policies.iter().map(|policy| policy.id.as_str()).collect();
    let expected: BTreeSet<&str> = OBJECT_POLICIES.iter().map(|policy| policy.id).collect();
    assert_eq!(ids, expected);
}

#[test]
fn same_verdict_on_the_testdata_corpus() {
    let policies = exported_policies();
    let corpus = corpus();
    assert!(corpus.len() > 60, "corpus of {} objects", corpus.len());
    let mut denied_somewhere = 0;
    for namespace_override in [None, Some("kube-system")] {
        for (kind, namespace, object) in &corpus {
            let namespace = namespace_override
                .filter(|_| kind == "Role")
                .unwrap_or(namespace);
            let rust = rust_verdict(kind, namespace, object);
            let cel = cel_verdict(&policies, kind, namespace, object);
            assert_eq!(
                rust, cel,
                "{kind} {namespace}/{}",
                object["metadata"]["name"]
            );
            denied_somewhere += usize::from(!rust.is_empty());
        }
    }
    assert!(
        denied_somewhere > 10,
        "the corpus exercises denials ({denied_somewhere})"
    );
}

#[test]
fn same_exemptions() {
    let policies = exported_policies();
    let guard = Guard::new(
        GuardConfig::default(),
        RbacConfig::default(),
        None,
        "test".into(),
    );
    for (username, groups) in [
        ("alice", vec!["system:authenticated"]),
        (
            "kubernetes-admin",
            vec!["system:masters", "system:authenticated"],
        ),
        ("system:apiserver", vec![]),
        (
            "system:kube-controller-manager",
            vec!["system:authenticated"],
        ),
        (
            "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
            vec!["system:serviceaccounts"],
        ),
        (
            "system:serviceaccount:kube-system:other",
            vec!["system:serviceaccounts"],
        ),
    ] {
        let request = serde_json::json!({"namespace": "", "userInfo": {"username": username, "groups": groups}});
        let scope = vec![("request".to_string(), request)];
        let cel_applies =
            evaluate(&policies[0].match_condition, &scope).expect("evaluates") == Value::Bool(true);
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"},
            "operation": "CREATE", "userInfo": {"username": username, "groups": groups},
            "object": {"metadata": {"name": "x"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}}});
        let response = guard
            .handle_review(&serde_json::to_vec(&review).expect("json"))
            .expect("answered");
        let rust_exempt = response["response"]["auditAnnotations"]["decision"] == "exempt";
        assert_eq!(cel_applies, !rust_exempt, "{username}");
    }
}

fn rule_strategy() -> impl Strategy<Value = Value> {
    let verbs = prop::sample::subsequence(
        vec![
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "*",
            "escalate",
            "bind",
            "impersonate",
            "approve",
        ],
        1..4,
    );
    let groups = prop::sample::subsequence(
        vec![
            "",
            "apps",
            "batch",
            "*",
            "certificates.k8s.io",
            "admissionregistration.k8s.io",
            "example.com",
        ],
        1..3,
    );
    let resources = prop::sample::subsequence(
        vec![
            "pods",
            "secrets",
            "configmaps",
            "nodes/proxy",
            "*/proxy",
            "nodes/*",
            "*",
            "signers",
            "mutatingwebhookconfigurations",
            "deployments",
            "jobs",
            "serviceaccounts/token",
            "*/token",
            "pods/exec",
            "widgets",
        ],
        1..4,
    );
    (verbs, groups, resources, any::<bool>()).prop_map(|(verbs, groups, resources, named)| {
        let mut rule =
            serde_json::json!({"verbs": verbs, "apiGroups": groups, "resources": resources});
        if named {
            rule["resourceNames"] = serde_json::json!(["only-this"]);
        }
        rule
    })
}

fn subject_strategy() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["User", "Group", "ServiceAccount"]),
        prop::sample::select(vec![
            "alice",
            "system:masters",
            "system:anonymous",
            "system:authenticated",
            "system:unauthenticated",
            "developers",
        ]),
    )
        .prop_map(
            |(kind, name)| serde_json::json!({"kind": kind, "name": name, "namespace": "app"}),
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn same_verdict_on_generated_roles(rules in prop::collection::vec(rule_strategy(), 0..4), kind in prop::sample::select(vec!["Role", "ClusterRole"]), namespace in prop::sample::select(vec!["app", "kube-system"])) {
        let policies = exported_policies();
        let object = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "generated"}, "rules": rules});
        let namespace = if kind == "Role" { namespace } else { "" };
        prop_assert_eq!(rust_verdict(kind, namespace, &object), cel_verdict(&policies, kind, namespace, &object));
    }

    #[test]
    fn same_verdict_on_generated_bindings(subjects in prop::collection::vec(subject_strategy(), 0..3), role in prop::sample::select(vec!["cluster-admin", "view", "edit"]), role_kind in prop::sample::select(vec!["ClusterRole", "Role"]), kind in prop::sample::select(vec!["RoleBinding", "ClusterRoleBinding"])) {
        let policies = exported_policies();
        let object = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "generated"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects});
        prop_assert_eq!(rust_verdict(kind, "app", &object), cel_verdict(&policies, kind, "app", &object));
    }
}
