//! The RBAC snapshot loader on arbitrary dumps (`kubectl get ... -o json|yaml`,
//! `List` or single objects, multi-document YAML): a text is loaded or refused
//! with an error naming the file and object, never a panic. What loads is
//! stored in the catalog as `to_list_json` and loaded back from there, so
//! that round trip must succeed and reproduce the same objects; and the
//! authorizer, who-can and every risk check must run on whatever loaded.
#![no_main]

use auditlens_fuzz::rbac::authorizer::{Authorizer, RequestAttributes, UserInfo, who_can};
use auditlens_fuzz::rbac::checks::audit_snapshot;
use auditlens_fuzz::rbac::config::RbacConfig;
use auditlens_fuzz::rbac::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // Files are read with read_to_string: only UTF-8 reaches the loader.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut snapshot = Snapshot::default();
    match snapshot.load_text(text, Path::new("fuzz/dump.yaml")) {
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with("fuzz/dump.yaml"), "error does not name the file: {message}");
            return;
        }
        Ok(()) => {}
    }
    let stored = snapshot.to_list_json().expect("a loaded snapshot serializes");
    let mut reloaded = Snapshot::default();
    if let Err(error) = reloaded.load_text(&stored, Path::new("catalog")) {
        panic!("the stored form of a loaded snapshot does not load: {error}\n{stored}");
    }
    assert_eq!(reloaded.rbac_object_count(), snapshot.rbac_object_count());
    let restored = reloaded.to_list_json().expect("serializes");
    assert_eq!(restored, stored, "the catalog round trip changed the snapshot");

    let authorizer = Authorizer::new(&snapshot);
    let masters = ["system:masters".to_string()];
    let no_groups: [String; 0] = [];
    for (name, groups) in [("alice", &no_groups[..]), ("system:serviceaccount:kube-system:default", &no_groups[..]), ("bob", &masters[..])] {
        let user = UserInfo::with_implicit_groups(name, groups);
        let _ = authorizer.grants_for(&user);
        for request in [
            RequestAttributes::resource("get", "", "secrets", "kube-system", "token"),
            RequestAttributes::resource("create", "", "pods/exec", "default", "web"),
            RequestAttributes::resource("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "admin"),
            RequestAttributes::non_resource("get", "/metrics"),
        ] {
            let _ = authorizer.authorize(&user, &request);
        }
    }
    let _ = who_can(&authorizer, &RequestAttributes::resource("list", "", "secrets", "default", ""), true);
    let findings = audit_snapshot(&snapshot, &RbacConfig::default());
    let _ = auditlens_fuzz::rbac::checks::render_sarif(&findings);
});
