//! The guard webhook's AdmissionReview handler on arbitrary request bodies
//! (what any client reaching the webhook port can send): it answers with a
//! response review or a `MalformedReview` (HTTP 400), never a panic, and every
//! answer is well formed: the response names the request's uid, a denial
//! carries a 403 status, and the enforce and dry-run guards agree (dry-run
//! allows exactly what enforce denies, with warnings). Both guards hold the
//! RBAC snapshot of the simulated cluster, so `critical-binding` resolves
//! bound roles.
#![no_main]

use auditlens_fuzz::rbac::config::{GuardConfig, GuardMode, RbacConfig};
use auditlens_fuzz::rbac::guard::Guard;
use auditlens_fuzz::rbac::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

struct Guards {
    enforce: Guard,
    dry_run: Guard,
    anomalies: Arc<AtomicU64>,
}

fn guards() -> &'static Guards {
    static GUARDS: OnceLock<Guards> = OnceLock::new();
    GUARDS.get_or_init(|| {
        let mut snapshot = Snapshot::default();
        snapshot
            .load_text(include_str!("../../testdata/sim/rbac.json"), Path::new("testdata/sim/rbac.json"))
            .expect("the simulated cluster's RBAC loads");
        let snapshot = Arc::new(snapshot);
        let anomalies = Arc::new(AtomicU64::new(0));
        let counter = anomalies.clone();
        let enforce = Guard::new(GuardConfig::default(), RbacConfig::default(), Some(snapshot.clone()), "fuzz".into())
            .with_anomaly_sink(Arc::new(move |anomaly| {
                assert_eq!(anomaly.detector, "guard.denied");
                assert!(!anomaly.reasons.is_empty());
                counter.fetch_add(1, Ordering::Relaxed);
            }));
        let dry_run_config = GuardConfig { mode: GuardMode::DryRun, ..GuardConfig::default() };
        let dry_run = Guard::new(dry_run_config, RbacConfig::default(), Some(snapshot), "fuzz".into());
        Guards { enforce, dry_run, anomalies }
    })
}

fn request_uid(body: &[u8]) -> Option<String> {
    let review: Value = serde_json::from_slice(body).ok()?;
    review.pointer("/request/uid")?.as_str().map(str::to_string)
}

fuzz_target!(|body: &[u8]| {
    let guards = guards();
    let malformed_before = guards.enforce.metrics.malformed.load(Ordering::Relaxed);
    let anomalies_before = guards.anomalies.load(Ordering::Relaxed);
    let enforced = guards.enforce.handle_review(body);
    let dry_run = guards.dry_run.handle_review(body);
    let malformed_after = guards.enforce.metrics.malformed.load(Ordering::Relaxed);
    assert_eq!(malformed_after - malformed_before, u64::from(enforced.is_err()), "malformed counter");
    let (enforced, dry_run) = match (enforced, dry_run) {
        (Err(enforce_error), Err(dry_run_error)) => {
            assert_eq!(enforce_error, dry_run_error);
            assert!(!enforce_error.to_string().is_empty());
            return;
        }
        (Ok(enforced), Ok(dry_run)) => (enforced, dry_run),
        (enforced, dry_run) => panic!("the modes disagree on whether the review is malformed: {enforced:?} / {dry_run:?}"),
    };
    let uid = request_uid(body).expect("an answered review has a request uid");
    for review in [&enforced, &dry_run] {
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["response"]["uid"].as_str(), Some(uid.as_str()));
        assert!(review["response"]["allowed"].is_boolean());
        assert!(review["response"]["auditAnnotations"]["decision"].is_string());
    }
    let denied = enforced["response"]["allowed"] == false;
    assert_eq!(dry_run["response"]["allowed"], true, "dry-run denied: {dry_run}");
    let anomalies = guards.anomalies.load(Ordering::Relaxed) - anomalies_before;
    if denied {
        assert_eq!(enforced["response"]["status"]["code"], 403);
        assert!(enforced["response"]["status"]["message"].as_str().is_some_and(|message| !message.is_empty()));
        assert_eq!(dry_run["response"]["auditAnnotations"]["decision"], "would-deny");
        assert_eq!(
            dry_run["response"]["auditAnnotations"]["policies"],
            enforced["response"]["auditAnnotations"]["policies"],
            "the modes found different violations"
        );
        assert_eq!(anomalies, 1, "one anomaly per denial");
    } else {
        assert_eq!(anomalies, 0, "an allowed review raised an anomaly");
        assert_eq!(enforced, dry_run, "no violation, yet the modes answered differently");
    }
});
