//! End-to-end runs of `auditlens simulate`: the real binary, real files.

use auditlens::audit::AuditEvent;
use auditlens::simulate::Label;
use auditlens::simulate::rbac::{Attributes, RbacState, Target};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn simulate(out: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .arg("simulate")
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("runs auditlens");
    assert!(
        output.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Log files in the order the API server wrote them: backups by name, then audit.log.
fn log_files(directory: &Path) -> Vec<PathBuf> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            name.starts_with("audit-")
        })
        .collect();
    backups.sort();
    backups.push(directory.join("audit.log"));
    backups
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    let file = std::fs::File::open(path).expect("open log");
    if path.extension().is_some_and(|extension| extension == "gz") {
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .expect("gunzip");
    } else {
        std::io::BufReader::new(file)
            .read_to_string(&mut text)
            .expect("read");
    }
    text
}

fn decode_all(directory: &Path) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for path in log_files(directory) {
        for (number, line) in read_log(&path).lines().enumerate() {
            match AuditEvent::decode(line.as_bytes()) {
                Ok(event) => events.push(event),
                Err(error) => errors.push(format!("{}:{}: {error}", path.display(), number + 1)),
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} lines did not decode, first: {:?}",
        errors.len(),
        errors.first()
    );
    events
}

fn read_labels(path: &Path) -> Vec<Label> {
    std::fs::read_to_string(path)
        .expect("labels file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("label line"))
        .collect()
}

fn all_files(directory: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(directory)
        .expect("read dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect()
}

const SMALL: &[&str] = &[
    "--days",
    "0.5",
    "--rate",
    "8",
    "--warmup-days",
    "0.2",
    "--max-size-mb",
    "1",
    "--gzip",
];

#[test]
fn the_same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let third = tempfile::tempdir().expect("tempdir");
    simulate(first.path(), &[SMALL, &["--seed", "7"]].concat());
    simulate(second.path(), &[SMALL, &["--seed", "7"]].concat());
    simulate(third.path(), &[SMALL, &["--seed", "8"]].concat());
    let first_files = all_files(first.path());
    assert!(
        first_files.len() > 5,
        "expected rotated files, got {:?}",
        first_files.keys()
    );
    assert_eq!(first_files, all_files(second.path()));
    assert_ne!(
        first_files.get("audit.log"),
        all_files(third.path()).get("audit.log")
    );
}

#[test]
fn every_line_decodes_and_every_labeled_audit_id_is_in_the_log() {
    let out = tempfile::tempdir().expect("tempdir");
    let summary = simulate(out.path(), &[SMALL, &["--seed", "3"]].concat());
    assert!(summary.contains("16 attacks labeled"), "{summary}");
    let events = decode_all(out.path());
    assert!(events.len() > 50_000, "only {} events", events.len());
    let mut actors_by_id: HashMap<&str, HashSet<&str>> = HashMap::new();
    for event in &events {
        actors_by_id
            .entry(event.audit_id.as_str())
            .or_default()
            .insert(event.actor());
    }
    let attacks = read_labels(&out.path().join("labels.jsonl"));
    let benign = read_labels(&out.path().join("benign.jsonl"));
    let scenarios: BTreeSet<&str> = attacks
        .iter()
        .map(|label| label.scenario.as_str())
        .collect();
    assert_eq!(
        scenarios.len(),
        auditlens::simulate::attack_scenarios().len(),
        "{scenarios:?}"
    );
    assert!(benign.len() >= 5, "benign episodes: {}", benign.len());
    for label in attacks.iter().chain(&benign) {
        assert!(
            !label.audit_ids.is_empty(),
            "{} has no audit IDs",
            label.scenario
        );
        assert!(
            label.start <= label.end,
            "{}: start after end",
            label.scenario
        );
        for id in &label.audit_ids {
            let actors = actors_by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{}: audit ID {id} not in the log", label.scenario));
            assert!(!actors.is_empty());
        }
        // The labeled identity is the authenticated actor of the scenario's first request.
        let first_actors = &actors_by_id[label.audit_ids[0].as_str()];
        assert!(
            first_actors.contains(label.identity.as_str()),
            "{}: labeled {} but the first request is by {first_actors:?}",
            label.scenario,
            label.identity
        );
    }
    // The stages the API server writes, including long-running ones.
    let stages: BTreeSet<&str> = events.iter().map(|event| event.stage.as_str()).collect();
    assert_eq!(
        stages,
        BTreeSet::from(["RequestReceived", "ResponseComplete", "ResponseStarted"])
    );
    assert!(
        events
            .iter()
            .any(|event| event.subresource() == Some("exec") && event.response_code() == Some(101))
    );
    assert!(
        events
            .iter()
            .any(|event| event.response_code() == Some(403) && event.decision() == Some("forbid"))
    );
    assert!(
        events
            .iter()
            .any(|event| event.request_uri.contains("watch=true&")
                || event.request_uri.ends_with("watch=true"))
    );
    // Secrets are never logged with their objects.
    assert!(
        events
            .iter()
            .filter(|event| event.resource() == Some("secrets"))
            .all(|event| event.level == "Metadata" && event.request_object.is_none())
    );
    // RBAC writes carry their objects.
    assert!(
        events
            .iter()
            .filter(|event| event.api_group() == "rbac.authorization.k8s.io"
                && event.is_write()
                && event.is_allowed()
                && event.stage == "ResponseComplete")
            .all(|event| event.level == "RequestResponse"
                && event.request_object.is_some()
                && event.response_object.is_some())
    );
}

#[test]
fn rotated_files_are_named_and_cut_like_the_api_servers() {
    let out = tempfile::tempdir().expect("tempdir");
    simulate(
        out.path(),
        &[SMALL, &["--seed", "5", "--max-backups", "4"]].concat(),
    );
    let files = log_files(out.path());
    assert_eq!(files.len(), 5, "four backups and audit.log: {files:?}");
    let pattern =
        regex::Regex::new(r"^audit-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})\.log\.gz$")
            .expect("regex");
    let mut previous_last: Option<i64> = None;
    for (index, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        let text = read_log(path);
        let stamps: Vec<i64> = text
            .lines()
            .map(|line| {
                AuditEvent::decode(line.as_bytes())
                    .expect("decodes")
                    .stage_ts
            })
            .collect();
        assert!(
            stamps.windows(2).all(|pair| pair[0] <= pair[1]),
            "{name}: not in stage order"
        );
        assert!(text.len() <= 1024 * 1024, "{name} is over --max-size-mb");
        if let Some(last) = previous_last {
            assert!(
                last <= stamps[0],
                "{name} starts before the previous file ends"
            );
        }
        previous_last = stamps.last().copied();
        if index + 1 == files.len() {
            assert_eq!(name, "audit.log");
            continue;
        }
        let captures = pattern
            .captures(name)
            .unwrap_or_else(|| panic!("{name} is not a lumberjack backup name"));
        // The name is the rotation time: after this file's last line (to the millisecond).
        let rotated = auditlens::audit::parse_rfc3339_micros(&format!(
            "{}T{}:{}:{}.{}Z",
            &captures[1], &captures[2], &captures[3], &captures[4], &captures[5]
        ))
        .expect("timestamp");
        assert!(
            rotated >= stamps[stamps.len() - 1] / 1000 * 1000,
            "{name} rotated before its last line"
        );
        assert!(
            rotated - stamps[stamps.len() - 1] < 60_000_000,
            "{name} rotated long after its last line"
        );
    }
}

fn attributes_of<'a>(
    event: &'a AuditEvent,
    username: &'a str,
    groups: &'a [String],
) -> Attributes<'a> {
    let target = match &event.object_ref {
        Some(object) => Target::Resource {
            api_group: object.api_group.as_deref().unwrap_or(""),
            resource: object.resource.as_deref().unwrap_or(""),
            subresource: object.subresource.as_deref(),
            namespace: object.namespace.as_deref(),
            name: object.name.as_deref(),
        },
        None => Target::NonResource(event.request_uri.split('?').next().unwrap_or("")),
    };
    Attributes {
        username,
        groups,
        verb: &event.verb,
        target,
    }
}

#[test]
fn rbac_json_is_a_list_that_allows_exactly_what_the_log_allowed() {
    let out = tempfile::tempdir().expect("tempdir");
    simulate(
        out.path(),
        &[
            "--days",
            "1",
            "--rate",
            "4",
            "--warmup-days",
            "0.3",
            "--seed",
            "11",
            "--single-file",
        ],
    );
    let text = std::fs::read_to_string(out.path().join("rbac.json")).expect("rbac.json");
    let list: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    let kinds: BTreeSet<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"])
    );
    let rbac = RbacState::from_list_json(&text).expect("reads back");
    for binding in rbac.cluster_role_bindings.iter().chain(&rbac.role_bindings) {
        let exists = if binding.role_kind == "ClusterRole" {
            rbac.cluster_role(&binding.role_name).is_some()
        } else {
            rbac.roles
                .iter()
                .any(|role| role.name == binding.role_name && role.namespace == binding.namespace)
        };
        assert!(
            exists,
            "binding {} refers to missing {} {}",
            binding.name, binding.role_kind, binding.role_name
        );
    }
    let events = decode_all(out.path());
    let (mut allowed, mut denied, mut mismatches) = (0, 0, Vec::new());
    for event in events
        .iter()
        .filter(|event| event.stage == "ResponseComplete")
    {
        let effective = event.impersonated_user.as_ref().unwrap_or(&event.user);
        if effective
            .groups
            .iter()
            .any(|group| group == RbacState::PRIVILEGED_GROUP)
        {
            continue;
        }
        let decision = rbac.authorize(&attributes_of(
            event,
            &effective.username,
            &effective.groups,
        ));
        match (event.decision(), decision.is_some()) {
            (Some("allow"), true) => allowed += 1,
            (Some("forbid"), false) => denied += 1,
            (logged, now) => mismatches.push(format!(
                "{} {} {} logged {logged:?}, rbac.json allows: {now}",
                effective.username, event.verb, event.request_uri
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    assert!(
        allowed > 10_000 && denied > 20,
        "allowed {allowed}, denied {denied}"
    );
}

#[test]
fn each_identity_behaves_the_same_way_from_day_to_day() {
    let out = tempfile::tempdir().expect("tempdir");
    // Wednesday to Saturday without attacks: machines must not care about the weekday.
    simulate(
        out.path(),
        &[
            "--days",
            "4",
            "--rate",
            "3",
            "--start",
            "2026-11-04T00:00:00Z",
            "--attacks",
            "none",
            "--single-file",
            "--seed",
            "2",
        ],
    );
    let events = decode_all(out.path());
    // identity -> day -> (verb/resource pairs, request count)
    let mut profile: BTreeMap<String, BTreeMap<i64, (BTreeSet<String>, u64)>> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|event| event.stage == "ResponseComplete")
    {
        let day = event.ts.div_euclid(86_400_000_000);
        let pair = format!(
            "{} {}/{}",
            event.verb,
            event.resource().unwrap_or("-"),
            event.subresource().unwrap_or("")
        );
        let entry = profile
            .entry(event.actor().to_string())
            .or_default()
            .entry(day)
            .or_default();
        entry.0.insert(pair);
        entry.1 += 1;
    }
    let mut compared = 0;
    for (identity, days) in &profile {
        if identity.ends_with("@example.com") || days.len() < 4 {
            continue;
        }
        let days: Vec<&(BTreeSet<String>, u64)> = days.values().collect();
        // The first and last day are partial: compare the two full middle days.
        let (first, second) = (days[1], days[2]);
        if first.1 < 200 {
            continue;
        }
        let shared = first.0.intersection(&second.0).count() as f64;
        let union = first.0.union(&second.0).count() as f64;
        let ratio = second.1 as f64 / first.1 as f64;
        assert!(
            shared / union >= 0.6,
            "{identity}: verb-resource pairs changed: {:?} vs {:?}",
            first.0,
            second.0
        );
        assert!(
            (0.5..2.0).contains(&ratio),
            "{identity}: volume went from {} to {}",
            first.1,
            second.1
        );
        compared += 1;
    }
    assert!(
        compared >= 20,
        "only {compared} identities had enough traffic to compare"
    );
    // Humans keep office hours: most of their requests fall on weekday daytime UTC-5..UTC+5:30.
    let human: Vec<&AuditEvent> = events
        .iter()
        .filter(|event| event.actor().ends_with("@example.com"))
        .collect();
    let saturday = auditlens::audit::parse_rfc3339_micros("2026-11-07T06:00:00Z").expect("time");
    let weekday_share =
        human.iter().filter(|event| event.ts < saturday).count() as f64 / human.len().max(1) as f64;
    assert!(
        human.len() > 500 && weekday_share > 0.9,
        "{} human events, weekday share {weekday_share}",
        human.len()
    );
}

#[test]
fn unknown_scenarios_and_bad_flags_are_refused() {
    let out = tempfile::tempdir().expect("tempdir");
    for flags in [
        &["--attacks", "teleport"][..],
        &["--days", "0"],
        &["--omit-stage", "ResponseComplete"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_auditlens"))
            .arg("simulate")
            .arg("--out")
            .arg(out.path())
            .args(flags)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("invalid argument"),
            "{flags:?}"
        );
    }
}

#[test]
fn omitting_request_received_drops_that_stage_only() {
    let out = tempfile::tempdir().expect("tempdir");
    simulate(
        out.path(),
        &[
            "--days",
            "0.1",
            "--rate",
            "10",
            "--omit-stage",
            "RequestReceived",
            "--single-file",
            "--attacks",
            "none",
        ],
    );
    let events = decode_all(out.path());
    assert!(events.iter().all(|event| event.stage != "RequestReceived"));
    assert!(events.iter().any(|event| event.stage == "ResponseStarted"));
}

#[test]
fn live_mode_writes_in_sped_up_real_time_and_stops_on_request() {
    let out = tempfile::tempdir().expect("tempdir");
    let args = auditlens::simulate::SimulateArgs {
        out: out.path().to_path_buf(),
        days: 1.0,
        seed: 4,
        start: Some("2026-11-02T09:00:00Z".into()),
        rate: 20.0,
        identities: 50,
        warmup_days: 0.0,
        attacks: "none".into(),
        attack_count: 1,
        max_size_mb: 0.2,
        gzip: true,
        gzip_level: 1,
        max_backups: None,
        single_file: false,
        live: true,
        speedup: 600.0,
        omit_stage: Vec::new(),
    };
    let config = auditlens::simulate::SimulationConfig::from_args(&args).expect("config");
    let rotation = auditlens::simulate::RotationOptions::from_args(&args).expect("rotation");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = auditlens::simulate::spawn_live(
        config,
        out.path().to_path_buf(),
        rotation,
        600.0,
        stop.clone(),
    )
    .expect("spawn");
    // The log grows while the simulation runs.
    let audit_log = out.path().join("audit.log");
    let mut grew = false;
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if std::fs::metadata(&audit_log)
            .map(|metadata| metadata.len())
            .unwrap_or(0)
            > 0
            && log_files(out.path()).len() > 1
        {
            grew = true;
            break;
        }
    }
    assert!(grew, "no rotation happened while live");
    assert!(
        !handle.is_finished(),
        "a simulated day at 600x takes minutes"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let summary = handle.join().expect("live run");
    assert!(summary.events > 1_000);
    let events = decode_all(out.path());
    assert_eq!(events.len() as u64, summary.events);
    assert!(out.path().join("rbac.json").exists());
}
