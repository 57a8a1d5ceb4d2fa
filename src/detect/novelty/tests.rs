use super::*;
use serde_json::json;

const T0: i64 = 1_800_057_600_000_000; // midnight UTC

struct Request<'a> {
    user: &'a str,
    verb: &'a str,
    resource: &'a str,
    namespace: &'a str,
    ip: &'a str,
    agent: &'a str,
}

fn request(request: &Request<'_>, ts: i64, id: &str) -> AuditEvent {
    let time = crate::audit::format_rfc3339_micros(ts);
    let mut object_ref = json!({"resource": request.resource, "apiVersion": "v1"});
    if !request.namespace.is_empty() {
        object_ref["namespace"] = json!(request.namespace);
    }
    let value = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
        "stage": "ResponseComplete", "requestURI": "/", "verb": request.verb,
        "user": {"username": request.user}, "sourceIPs": [request.ip], "userAgent": request.agent,
        "objectRef": object_ref, "responseStatus": {"code": 200},
        "requestReceivedTimestamp": time, "stageTimestamp": time
    });
    AuditEvent::decode(value.to_string().as_bytes()).expect("valid test event")
}

const MINUTE: i64 = 60_000_000;

/// Ten working days of a person: 09:00-17:00 UTC, namespaces dev and staging,
/// office network 203.0.113.0/24, kubectl.
fn train_person(index: &mut NoveltyIndex, user: &str) -> i64 {
    let mut ts = T0;
    let mut counter = 0;
    for day in 0..10 {
        let day_start = T0 + day * DAY;
        for step in 0..48 {
            ts = day_start + 9 * HOUR + step * 10 * MINUTE; // 09:00 .. 16:50
            let namespace = if step % 2 == 0 { "dev" } else { "staging" };
            let verb = if step % 3 == 0 { "list" } else { "get" };
            let ip = format!("203.0.113.{}", 10 + (day % 5));
            let request_value = Request {
                user,
                verb,
                resource: "pods",
                namespace,
                ip: &ip,
                agent: "kubectl/v1.29.0 (linux/amd64) kubernetes/abc",
            };
            counter += 1;
            assert!(
                index
                    .observe(&request(&request_value, ts, &format!("train-{counter}")))
                    .is_empty()
            );
        }
    }
    ts
}

fn hour_of(ts: i64) -> i64 {
    ts.rem_euclid(DAY) / HOUR
}

#[test]
fn one_new_user_agent_version_or_address_is_nothing() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let last = train_person(&mut index, "alice");
    assert!(last < T0 + 10 * DAY);
    let next_day = T0 + 11 * DAY + 10 * HOUR;
    let upgraded = Request {
        user: "alice",
        verb: "get",
        resource: "pods",
        namespace: "dev",
        ip: "203.0.113.99",
        agent: "kubectl/v1.31.2 (darwin/arm64) kubernetes/def",
    };
    let mut anomalies = index.observe(&request(&upgraded, next_day, "x1"));
    anomalies.extend(index.finish());
    assert!(anomalies.is_empty(), "{anomalies:?}");
}

#[test]
fn a_person_at_night_in_new_namespaces_from_a_new_network_is_raised_once() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let last = train_person(&mut index, "alice");
    assert!(last < T0 + 10 * DAY);
    let night = T0 + 11 * DAY + 2 * HOUR;
    assert_eq!(hour_of(night), 2);
    let mut anomalies = Vec::new();
    for (step, namespace) in ["payments", "vault", "prod"].iter().enumerate() {
        let evil = Request {
            user: "alice",
            verb: "list",
            resource: "secrets",
            namespace,
            ip: "198.51.100.23",
            agent: "kubectl/v1.29.0",
        };
        anomalies.extend(index.observe(&request(
            &evil,
            night + step as i64 * MINUTE,
            &format!("evil-{step}"),
        )));
    }
    anomalies.extend(index.finish());
    assert_eq!(
        anomalies.len(),
        1,
        "combined into one anomaly: {anomalies:?}"
    );
    let anomaly = &anomalies[0];
    assert_eq!(anomaly.kind, AnomalyKind::Novelty);
    assert_eq!(anomaly.identity, "alice");
    assert!(anomaly.score >= 0.6, "score {}", anomaly.score);
    assert_eq!(
        anomaly.severity,
        Severity::High,
        "four kinds of novelty at once"
    );
    assert_eq!(
        anomaly.evidence_audit_ids,
        vec!["evil-0", "evil-1", "evil-2"]
    );
    assert!(
        anomaly
            .reasons
            .iter()
            .any(|reason| reason.contains("namespace payments")),
        "{:?}",
        anomaly.reasons
    );
    assert!(
        anomaly
            .reasons
            .iter()
            .any(|reason| reason.contains("198.51.100.0/24")),
        "{:?}",
        anomaly.reasons
    );
}

#[test]
fn a_service_account_token_used_from_outside_is_high() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let sa = "system:serviceaccount:shop:checkout";
    let mut ts = T0;
    for step in 0..(5 * 24 * 6) {
        ts = T0 + step * 10 * MINUTE;
        let normal = Request {
            user: sa,
            verb: "get",
            resource: "configmaps",
            namespace: "shop",
            ip: "10.244.3.17",
            agent: "checkout/1.4 (linux) client-go",
        };
        assert!(
            index
                .observe(&request(&normal, ts, &format!("n-{step}")))
                .is_empty()
        );
    }
    let stolen = Request {
        user: sa,
        verb: "list",
        resource: "secrets",
        namespace: "shop",
        ip: "198.51.100.7",
        agent: "curl/8.4.0",
    };
    let mut anomalies = index.observe(&request(&stolen, ts + MINUTE, "stolen"));
    anomalies.extend(index.finish());
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].severity, Severity::High);
    assert!(
        anomalies[0]
            .reasons
            .iter()
            .any(|reason| reason.contains("public address")),
        "{:?}",
        anomalies[0].reasons
    );
}

#[test]
fn a_pod_moving_to_another_node_is_not_news_for_a_service_account() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let sa = "system:serviceaccount:shop:checkout";
    let mut ts = T0;
    for step in 0..(3 * 24 * 6) {
        ts = T0 + step * 10 * MINUTE;
        let normal = Request {
            user: sa,
            verb: "get",
            resource: "configmaps",
            namespace: "shop",
            ip: "10.244.3.17",
            agent: "checkout/1.4",
        };
        index.observe(&request(&normal, ts, &format!("n-{step}")));
    }
    let moved = Request {
        user: sa,
        verb: "get",
        resource: "configmaps",
        namespace: "shop",
        ip: "10.244.9.4",
        agent: "checkout/1.5",
    };
    let mut anomalies = index.observe(&request(&moved, ts + MINUTE, "moved"));
    anomalies.extend(index.finish());
    assert!(anomalies.is_empty(), "{anomalies:?}");
}

#[test]
fn learning_identities_raise_nothing() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let mut anomalies = Vec::new();
    for step in 0..30 {
        let namespace = format!("ns-{step}");
        let wild = Request {
            user: "newcomer",
            verb: "delete",
            resource: "pods",
            namespace: &namespace,
            ip: &format!("198.51.{step}.1"),
            agent: &format!("tool{step}/1"),
        };
        anomalies.extend(index.observe(&request(&wild, T0 + step * MINUTE, &format!("w-{step}"))));
    }
    anomalies.extend(index.finish());
    assert!(anomalies.is_empty());
    assert!(index.is_learning("newcomer"));
}

#[test]
fn habits_are_what_was_done_before_the_window() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let last = train_person(&mut index, "alice");
    assert!(index.is_habitual("alice", "get pods dev", last + MINUTE));
    assert!(!index.is_habitual("alice", "create pods/exec dev", last + MINUTE));
    assert!(!index.is_habitual("bob", "get pods dev", last + MINUTE));
    assert!(
        !index.is_habitual("alice", "get pods dev", T0),
        "not before it was first seen"
    );
}

#[test]
fn values_expire_after_the_lookback() {
    let options = NoveltyOptions {
        lookback_micros: 3 * DAY,
        ..NoveltyOptions::default()
    };
    let mut index = NoveltyIndex::new(options);
    let last = train_person(&mut index, "alice");
    assert!(index.is_habitual("alice", "get pods dev", last + MINUTE));
    assert!(!index.is_habitual("alice", "get pods dev", last + 4 * DAY));
}

#[test]
fn families_and_networks() {
    assert_eq!(
        user_agent_family(Some("kubectl/v1.30.1 (linux/amd64) kubernetes/abc")),
        "kubectl"
    );
    assert_eq!(
        user_agent_family(Some("Go-http-client/2.0")),
        "go-http-client"
    );
    assert_eq!(user_agent_family(None), "(none)");
    assert_eq!(
        network_of("10.244.3.17"),
        Some(("10.244.0.0/16".into(), false))
    );
    assert_eq!(
        network_of("198.51.100.7"),
        Some(("198.51.100.0/24".into(), true))
    );
    assert_eq!(
        network_of("2001:db8:1:2:3::4"),
        Some(("2001:db8:1:2::/64".into(), true))
    );
    assert_eq!(network_of("not-an-ip"), None);
}

#[test]
fn repeated_facts_of_one_kind_count_less() {
    let fact = |kind, value: &str, weight| NovelFact {
        kind,
        value: value.into(),
        weight,
        reason: String::new(),
    };
    let one = combined_score(&[fact(FactKind::Namespace, "a", 0.4)]);
    let two = combined_score(&[
        fact(FactKind::Namespace, "a", 0.4),
        fact(FactKind::Namespace, "b", 0.4),
    ]);
    let mixed = combined_score(&[
        fact(FactKind::Namespace, "a", 0.4),
        fact(FactKind::Network, "n", 0.4),
    ]);
    assert!((one - 0.4).abs() < 1e-9);
    assert!(two > one && two < mixed, "{one} {two} {mixed}");
    assert!((mixed - 0.64).abs() < 1e-9);
}

#[test]
fn unlearning_a_confirmed_window_forgets_only_what_it_showed_first() {
    let mut index = NoveltyIndex::new(NoveltyOptions::default());
    let last = train_person(&mut index, "alice");
    let attack_at = last + HOUR;
    let attack = Request {
        user: "alice",
        verb: "get",
        resource: "secrets",
        namespace: "kube-system",
        ip: "198.51.100.7",
        agent: "curl/8.0",
    };
    index.observe(&request(&attack, attack_at, "attack-1"));
    index.finish();
    let later = attack_at + HOUR;
    let kube_system = namespace_habit_key("kube-system");
    let dev = namespace_habit_key("dev");
    assert!(index.is_habitual("alice", &kube_system, later));
    assert!(index.is_habitual("alice", "get secrets kube-system", later));
    // Namespace, address, network, user-agent family, verb-resource action, exact action.
    assert_eq!(
        index.unlearn_window("alice", attack_at - MINUTE, attack_at + MINUTE),
        6
    );
    assert!(!index.is_habitual("alice", &kube_system, later));
    assert!(!index.is_habitual("alice", "get secrets kube-system", later));
    assert!(
        index.is_habitual("alice", &dev, later),
        "what she did before the window stays known"
    );
    assert!(!index.is_learning("alice"));
    assert_eq!(
        index.unlearn_window("alice", attack_at - MINUTE, attack_at + MINUTE),
        0
    );
    assert_eq!(index.unlearn_window("nobody", 0, i64::MAX), 0);
}
