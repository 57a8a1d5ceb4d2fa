#!/usr/bin/env python3
"""Writes a realistic audit log for benchmarks: N events averaging ~1.2 KB.

Usage: python3 benches/make_audit_log.py OUT.log [N=1000000] [SEED=1]

The mix follows a real cluster's: kubelet and controller get/list/watch at
Metadata level, leases, service-account reads, human kubectl traffic, and
RequestResponse events for RBAC objects and pods carrying request/response
objects of different shapes (the thing that defeats schema auto-detection).
"""
import json, random, sys, uuid

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

users = (
    [(f"system:node:worker-{i}", ["system:nodes", "system:authenticated"], f"kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46") for i in range(12)]
    + [(f"system:serviceaccount:kube-system:{c}", ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"], "kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:" + c)
       for c in ["replicaset-controller", "deployment-controller", "endpointslice-controller", "namespace-controller", "job-controller"]]
    + [(f"system:serviceaccount:team-{i}:app", ["system:serviceaccounts", f"system:serviceaccounts:team-{i}", "system:authenticated"], "Go-http-client/2.0") for i in range(20)]
    + [(f"{n}@example.com", ["oidc:platform", "system:authenticated"], "kubectl/v1.31.0 (darwin/arm64) kubernetes/abcdef0") for n in ["alice", "bob", "carol", "dave"]]
)
resources = ["pods", "configmaps", "secrets", "services", "endpoints", "leases", "nodes", "deployments", "events", "roles", "rolebindings"]

def pod_object(name, ns):
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns, "labels": {"app": name.split("-")[0], "pod-template-hash": "7998647bdf"}},
            "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": f"registry.example.com/{name}:1.{rng.randint(0,40)}",
             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}, "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False}}]}}

def role_object(name, ns):
    return {"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": name, "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": rng.sample(resources, 2), "verbs": rng.sample(["get", "list", "watch", "create", "update"], 3)}]}

with open(out, "w") as f:
    t0 = 1_795_770_000.0  # 2026-11-27T05:40Z
    for i in range(count):
        user, groups, ua = users[rng.randrange(len(users))]
        ns = f"team-{rng.randrange(20)}"
        res = rng.choice(resources)
        verb = rng.choice(["get", "get", "list", "watch", "update", "patch", "create", "delete"])
        name = f"{res[:-1]}-{rng.randrange(1000)}"
        ts = t0 + i * 0.001
        sec = int(ts); micros = int((ts - sec) * 1e6)
        import datetime
        stamp = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"
        code = 200 if rng.random() > 0.02 else 403
        ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": str(uuid.UUID(int=rng.getrandbits(128))),
              "stage": "ResponseComplete",
              "requestURI": f"/api/v1/namespaces/{ns}/{res}/{name}?resourceVersion=0&timeout=30s&limit=500",
              "verb": verb, "user": {"username": user, "uid": str(uuid.UUID(int=rng.getrandbits(128))), "groups": groups,
              "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={uuid.UUID(int=rng.getrandbits(128))}"]}},
              "sourceIPs": [f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"], "userAgent": ua,
              "objectRef": {"resource": res, "namespace": ns, "name": name, "apiVersion": "v1"},
              "responseStatus": {"metadata": {}, "code": code},
              "requestReceivedTimestamp": stamp, "stageTimestamp": stamp,
              "annotations": {"authorization.k8s.io/decision": "allow" if code == 200 else "forbid",
                              "authorization.k8s.io/reason": f"RBAC: allowed by ClusterRoleBinding \"system:{res}\" of ClusterRole \"system:{res}\" to Group \"{groups[0]}\""}}
        if code == 403:
            ev["responseStatus"] = {"metadata": {}, "status": "Failure", "message": f"{res} \"{name}\" is forbidden: User \"{user}\" cannot {verb} resource \"{res}\" in API group \"\" in the namespace \"{ns}\"", "reason": "Forbidden", "details": {"name": name, "kind": res}, "code": 403}
        r = rng.random()
        if r < 0.06 and verb in ("create", "update", "patch"):
            ev["level"] = "RequestResponse"
            obj = pod_object(name, ns) if rng.random() < 0.5 else role_object(name, ns)
            if obj["kind"] == "Role":
                ev["objectRef"].update({"resource": "roles", "apiGroup": "rbac.authorization.k8s.io"})
            ev["requestObject"] = obj
            ev["responseObject"] = dict(obj, metadata=dict(obj["metadata"], uid=str(uuid.UUID(int=rng.getrandbits(128))), resourceVersion=str(rng.randrange(10**7))))
        elif r < 0.5:
            ev["annotations"]["pod-security.kubernetes.io/enforce-policy"] = "restricted:latest"
            ev["annotations"]["apiserver.latency.k8s.io/etcd"] = f"{rng.randrange(100,9000)}us"
            ev["annotations"]["apiserver.latency.k8s.io/total"] = f"{rng.randrange(1,90)}ms"
        f.write(json.dumps(ev, separators=(",", ":")) + "\n")
