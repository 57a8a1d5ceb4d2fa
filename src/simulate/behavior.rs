//! Normal behavior: what each identity does, when, and how often.
//!
//! Every identity owns a few activities. An activity is either periodic (a
//! lease renewal every 10 s, a watch re-established when its timeout ends) or
//! random with a rate that follows a rhythm (constant, daily traffic, the
//! working hours of one person's timezone). Machine activities are scaled
//! together so the whole cluster hits the requested event rate: random ones
//! by the factor, periodic ones (leases, heartbeats) only when the factor is
//! below one, so a busy cluster never renews its leases faster than a real
//! one. Human and CI activity keeps its natural rate, so a small `--rate`
//! still has people in it.

use super::cluster::{Application, Cluster, HumanRole, rc};
use super::engine::{Call, Engine, MICROS_PER_SECOND};
use super::json;
use super::resources::{self as r, ResourceType, query_escape, watch_query};
use rand::Rng;
use serde_json::{Value, json};
use std::rc::Rc;

const MINUTE: i64 = 60 * MICROS_PER_SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// When an activity happens.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timing {
    /// Every `period` microseconds, give or take `jitter` (a fraction).
    Every { period: i64, jitter: f64 },
    /// A Poisson process of `per_hour` at the rhythm's peak.
    Random { per_hour: f64 },
}

/// How an activity's rate varies over the day and week.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rhythm {
    Constant,
    /// Application traffic: a daily wave peaking mid-afternoon UTC.
    Traffic,
    /// Working hours in a timezone (offset from UTC in minutes), weekdays.
    WorkingHours {
        utc_offset_minutes: i64,
    },
}

impl Rhythm {
    /// The relative rate at `ts`, in [0, 1].
    pub(crate) fn at(self, ts: i64) -> f64 {
        match self {
            Rhythm::Constant => 1.0,
            Rhythm::Traffic => {
                let hour = (ts.rem_euclid(DAY)) as f64 / HOUR as f64;
                0.55 + 0.45 * ((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin()
            }
            Rhythm::WorkingHours { utc_offset_minutes } => {
                let local = ts + utc_offset_minutes * MINUTE;
                // 1970-01-01 was a Thursday: day 0 → Thursday.
                let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7); // 0 = Monday
                let hour = local.rem_euclid(DAY) as f64 / HOUR as f64;
                if weekday >= 5 {
                    return if (10.0..17.0).contains(&hour) {
                        0.03
                    } else {
                        0.0
                    };
                }
                match hour {
                    h if (9.0..12.0).contains(&h) => 1.0,
                    h if (12.0..13.5).contains(&h) => 0.45,
                    h if (13.5..18.0).contains(&h) => 0.9,
                    h if (8.0..9.0).contains(&h) || (18.0..19.5).contains(&h) => 0.25,
                    h if (19.5..22.0).contains(&h) => 0.03,
                    _ => 0.0,
                }
            }
        }
    }
}

/// Which of a list a call picks each time.
#[derive(Debug, Clone)]
pub(crate) enum Pick<T> {
    None,
    One(T),
    Any(Vec<T>),
}

impl<T: Clone> Pick<T> {
    fn choose(&self, rng: &mut impl Rng) -> Option<T> {
        match self {
            Pick::None => None,
            Pick::One(value) => Some(value.clone()),
            Pick::Any(values) if values.is_empty() => None,
            Pick::Any(values) => Some(values[rng.random_range(0..values.len())].clone()),
        }
    }
}

/// The query string style of a templated call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueryStyle {
    None,
    /// `?timeout=10s` (kubelet and lease clients).
    Timeout(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct CallTemplate {
    pub actor: usize,
    pub verb: &'static str,
    pub resource: &'static ResourceType,
    pub subresource: Option<&'static str>,
    pub namespace: Pick<Rc<str>>,
    pub name: Pick<String>,
    pub query: QueryStyle,
    /// `fieldSelector=...` for watches.
    pub selector: Option<String>,
    pub source_ip: Option<Rc<str>>,
    pub user_agent: Option<Rc<str>>,
}

impl CallTemplate {
    fn new(actor: usize, verb: &'static str, resource: &'static ResourceType) -> CallTemplate {
        CallTemplate {
            actor,
            verb,
            resource,
            subresource: None,
            namespace: Pick::None,
            name: Pick::None,
            query: QueryStyle::None,
            selector: None,
            source_ip: None,
            user_agent: None,
        }
    }
}

/// What an activity does when it fires.
#[derive(Debug, Clone)]
pub(crate) enum ActivityKind {
    /// One templated call.
    Call(CallTemplate),
    /// A watch that lasts until the next one (client-go reflector).
    Watch(CallTemplate),
    /// Leader election: get, then update, the lease.
    LeaderElection {
        actor: usize,
        namespace: Rc<str>,
        name: String,
        agent: Option<Rc<str>>,
    },
    NodeLease {
        node: usize,
    },
    NodeHeartbeat {
        node: usize,
    },
    NodeStatusPatch {
        node: usize,
    },
    PodStatus {
        node: usize,
    },
    NodeEvents {
        node: usize,
    },
    PodTokens {
        node: usize,
    },
    Discovery {
        actor: usize,
    },
    ApplicationConfig {
        app: usize,
    },
    ApplicationSecret {
        app: usize,
    },
    ControllerTokens,
    HumanSession {
        human: usize,
    },
    ContinuousIntegration,
    ArgoRefresh,
    ArgoSync,
    CronJob {
        app: usize,
    },
    EndpointSlices,
    DeploymentStatus,
    PrometheusConfig,
    CaBundleInjection,
    HealthCheck,
    FlowControl,
}

pub(crate) struct Activity {
    pub kind: ActivityKind,
    pub timing: Timing,
    pub rhythm: Rhythm,
    /// Scaled by the machine rate factor.
    pub scaled: bool,
    pub next_at: i64,
}

fn every(kind: ActivityKind, seconds: f64) -> Activity {
    Activity {
        kind,
        timing: Timing::Every {
            period: (seconds * MICROS_PER_SECOND as f64) as i64,
            jitter: 0.05,
        },
        rhythm: Rhythm::Constant,
        scaled: true,
        next_at: 0,
    }
}

fn random(kind: ActivityKind, per_hour: f64, rhythm: Rhythm) -> Activity {
    Activity {
        kind,
        timing: Timing::Random { per_hour },
        rhythm,
        scaled: true,
        next_at: 0,
    }
}

fn watch(template: CallTemplate) -> Activity {
    Activity {
        kind: ActivityKind::Watch(template),
        timing: Timing::Every {
            period: 450 * MICROS_PER_SECOND,
            jitter: 0.33,
        },
        rhythm: Rhythm::Constant,
        // Like every periodic activity: real period, thinned only for low rates.
        scaled: true,
        next_at: 0,
    }
}

fn unscaled(mut activity: Activity) -> Activity {
    activity.scaled = false;
    activity
}

fn cluster_watch(actor: usize, resource: &'static ResourceType) -> Activity {
    watch(CallTemplate::new(actor, "watch", resource))
}

/// The activities of every identity in `cluster`.
pub(crate) fn activities(cluster: &Cluster, rng: &mut impl Rng) -> Vec<Activity> {
    let known = &cluster.known;
    let mut list = Vec::new();
    let kube_system = rc("kube-system");
    let shared_informers: Rc<str> = rc(&format!(
        "kube-controller-manager/{} (linux/amd64) kubernetes/{}/shared-informers",
        super::cluster::KUBERNETES_VERSION,
        super::cluster::KUBERNETES_COMMIT
    ));

    for (index, node) in cluster.nodes.iter().enumerate() {
        list.push(every(ActivityKind::NodeLease { node: index }, 10.0));
        list.push(every(ActivityKind::NodeHeartbeat { node: index }, 10.0));
        list.push(every(ActivityKind::NodeStatusPatch { node: index }, 300.0));
        list.push(random(
            ActivityKind::PodStatus { node: index },
            90.0,
            Rhythm::Traffic,
        ));
        list.push(random(
            ActivityKind::NodeEvents { node: index },
            10.0,
            Rhythm::Constant,
        ));
        list.push(random(
            ActivityKind::PodTokens { node: index },
            6.0,
            Rhythm::Constant,
        ));
        let kubelet = node.identity;
        let mut pods = CallTemplate::new(kubelet, "watch", r::PODS);
        pods.selector = Some(format!("fieldSelector=spec.nodeName%3D{}", node.name));
        list.push(watch(pods));
        let mut own_node = CallTemplate::new(kubelet, "watch", r::NODES);
        own_node.selector = Some(format!("fieldSelector=metadata.name%3D{}", node.name));
        list.push(watch(own_node));
        list.push(cluster_watch(kubelet, r::SERVICES));
        list.push(cluster_watch(kubelet, r::RUNTIMECLASSES));
        list.push(cluster_watch(kubelet, r::CSIDRIVERS));
        let mut root_ca = CallTemplate::new(kubelet, "watch", r::CONFIGMAPS);
        root_ca.namespace = Pick::Any(cluster.all_namespaces.clone());
        root_ca.selector = Some("fieldSelector=metadata.name%3Dkube-root-ca.crt".to_string());
        list.push(watch(root_ca));
        // kube-proxy on this node.
        for resource in [r::SERVICES, r::ENDPOINTSLICES, r::NODES] {
            let mut template = CallTemplate::new(known.kube_proxy, "watch", resource);
            template.source_ip = Some(node.ip.clone());
            if resource == r::ENDPOINTSLICES {
                template.selector = Some("labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name".into());
            }
            list.push(watch(template));
        }
    }

    // Control plane.
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.controller_manager,
            namespace: kube_system.clone(),
            name: "kube-controller-manager".into(),
            agent: None,
        },
        2.0,
    ));
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.scheduler,
            namespace: kube_system.clone(),
            name: "kube-scheduler".into(),
            agent: None,
        },
        2.0,
    ));
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.api_server,
            namespace: kube_system.clone(),
            name: format!("apiserver-{}", json::name_suffix(rng, 26)),
            agent: None,
        },
        10.0,
    ));
    list.push(random(ActivityKind::FlowControl, 240.0, Rhythm::Constant));
    for resource in [
        r::PODS,
        r::NODES,
        r::DEPLOYMENTS,
        r::REPLICASETS,
        r::DAEMONSETS,
        r::STATEFULSETS,
        r::SERVICES,
        r::ENDPOINTSLICES,
        r::NAMESPACES,
        r::SERVICEACCOUNTS,
        r::SECRETS,
        r::CONFIGMAPS,
        r::JOBS,
        r::CRONJOBS,
        r::PERSISTENTVOLUMECLAIMS,
        r::PERSISTENTVOLUMES,
        r::RESOURCEQUOTAS,
        r::CERTIFICATESIGNINGREQUESTS,
        r::PODDISRUPTIONBUDGETS,
        r::HORIZONTALPODAUTOSCALERS,
        r::LEASES,
        r::CSINODES,
    ] {
        let mut template = CallTemplate::new(known.controller_manager, "watch", resource);
        template.user_agent = Some(shared_informers.clone());
        list.push(watch(template));
    }
    list.push(random(
        ActivityKind::ControllerTokens,
        13.0,
        Rhythm::Constant,
    ));
    for resource in [
        r::NODES,
        r::PERSISTENTVOLUMES,
        r::PERSISTENTVOLUMECLAIMS,
        r::CSINODES,
        r::CSIDRIVERS,
        r::STORAGECLASSES,
        r::SERVICES,
        r::REPLICASETS,
        r::STATEFULSETS,
        r::PODDISRUPTIONBUDGETS,
        r::NAMESPACES,
    ] {
        list.push(cluster_watch(known.scheduler, resource));
    }
    let mut scheduler_pods = CallTemplate::new(known.scheduler, "watch", r::PODS);
    scheduler_pods.selector =
        Some("fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed".into());
    list.push(watch(scheduler_pods));

    // Controllers.
    list.push(every(
        ActivityKind::Discovery {
            actor: known.garbage_collector,
        },
        30.0,
    ));
    list.push(every(
        ActivityKind::Discovery {
            actor: known.resourcequota_controller,
        },
        30.0,
    ));
    list.push(random(
        ActivityKind::Discovery {
            actor: known.namespace_controller,
        },
        2.0,
        Rhythm::Constant,
    ));
    list.push(random(ActivityKind::EndpointSlices, 120.0, Rhythm::Traffic));
    list.push(random(
        ActivityKind::DeploymentStatus,
        6.0,
        Rhythm::Constant,
    ));
    let node_names: Vec<String> = cluster.nodes.iter().map(|node| node.name.clone()).collect();
    let mut node_get = CallTemplate::new(known.node_controller, "get", r::NODES);
    node_get.name = Pick::Any(node_names.clone());
    list.push(random(
        ActivityKind::Call(node_get),
        120.0,
        Rhythm::Constant,
    ));
    let mut attach_get = CallTemplate::new(known.attachdetach_controller, "get", r::NODES);
    attach_get.name = Pick::Any(node_names.clone());
    list.push(random(
        ActivityKind::Call(attach_get),
        4.0,
        Rhythm::Constant,
    ));
    let mut attach_patch = CallTemplate::new(known.attachdetach_controller, "patch", r::NODES);
    attach_patch.name = Pick::Any(node_names.clone());
    attach_patch.subresource = Some("status");
    list.push(random(
        ActivityKind::Call(attach_patch),
        2.0,
        Rhythm::Constant,
    ));
    let volumes: Vec<String> = (0..6)
        .map(|_| format!("pvc-{}", json::uuid_string(rng)))
        .collect();
    let mut volume_get = CallTemplate::new(known.volume_binder, "get", r::PERSISTENTVOLUMES);
    volume_get.name = Pick::Any(volumes);
    list.push(random(
        ActivityKind::Call(volume_get),
        240.0,
        Rhythm::Constant,
    ));
    for (app_index, app) in cluster.applications.iter().enumerate() {
        if app.has_cron_job {
            list.push(unscaled(random(
                ActivityKind::CronJob { app: app_index },
                1.0,
                Rhythm::Constant,
            )));
        }
    }

    // Add-ons.
    for resource in [r::SERVICES, r::ENDPOINTSLICES, r::NAMESPACES] {
        list.push(cluster_watch(known.coredns, resource));
    }
    list.push(cluster_watch(known.metrics_server, r::NODES));
    let mut token_review = CallTemplate::new(known.metrics_server, "create", r::TOKENREVIEWS);
    token_review.query = QueryStyle::Timeout(10);
    list.push(random(
        ActivityKind::Call(token_review.clone()),
        240.0,
        Rhythm::Traffic,
    ));
    token_review.resource = r::SUBJECTACCESSREVIEWS;
    list.push(random(
        ActivityKind::Call(token_review),
        480.0,
        Rhythm::Traffic,
    ));
    let mut monitored: Vec<Rc<str>> = vec![rc("monitoring"), kube_system.clone()];
    for team in &cluster.teams {
        monitored.push(team.namespaces[0].clone());
    }
    for namespace in &monitored {
        for resource in [r::PODS, r::SERVICES, r::ENDPOINTSLICES] {
            let mut template = CallTemplate::new(known.prometheus, "watch", resource);
            template.namespace = Pick::One(namespace.clone());
            list.push(watch(template));
        }
    }
    for resource in [r::SERVICEMONITORS, r::PROMETHEUSRULES, r::PROMETHEUSES] {
        list.push(cluster_watch(known.prometheus_operator, resource));
    }
    list.push(random(
        ActivityKind::PrometheusConfig,
        120.0,
        Rhythm::Constant,
    ));
    for resource in [
        r::PODS,
        r::NODES,
        r::DEPLOYMENTS,
        r::REPLICASETS,
        r::DAEMONSETS,
        r::STATEFULSETS,
        r::JOBS,
        r::CRONJOBS,
        r::SERVICES,
        r::NAMESPACES,
        r::CONFIGMAPS,
        r::SECRETS,
        r::PERSISTENTVOLUMECLAIMS,
        r::INGRESSES,
        r::HORIZONTALPODAUTOSCALERS,
        r::LEASES,
        r::CERTIFICATESIGNINGREQUESTS,
    ] {
        list.push(cluster_watch(known.kube_state_metrics, resource));
    }
    for resource in [
        r::CERTIFICATES,
        r::CERTIFICATEREQUESTS,
        r::ISSUERS,
        r::SECRETS,
        r::INGRESSES,
    ] {
        list.push(cluster_watch(known.cert_manager, resource));
    }
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.cert_manager,
            namespace: kube_system.clone(),
            name: "cert-manager-controller".into(),
            agent: Some(rc("cert-manager-controller/v1.16.1 (linux/amd64) cert-manager/3b4a1ea6/leader-election")),
        },
        15.0,
    ));
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.cert_manager_cainjector,
            namespace: kube_system.clone(),
            name: "cert-manager-cainjector-leader-election".into(),
            agent: None,
        },
        15.0,
    ));
    for resource in [
        r::VALIDATINGWEBHOOKCONFIGURATIONS,
        r::MUTATINGWEBHOOKCONFIGURATIONS,
        r::CUSTOMRESOURCEDEFINITIONS,
        r::APISERVICES,
    ] {
        list.push(cluster_watch(known.cert_manager_cainjector, resource));
    }
    list.push(unscaled(random(
        ActivityKind::CaBundleInjection,
        0.15,
        Rhythm::Constant,
    )));
    for resource in [
        r::INGRESSES,
        r::INGRESSCLASSES,
        r::SERVICES,
        r::ENDPOINTSLICES,
        r::SECRETS,
        r::CONFIGMAPS,
    ] {
        list.push(cluster_watch(known.ingress_nginx, resource));
    }
    list.push(every(
        ActivityKind::LeaderElection {
            actor: known.ingress_nginx,
            namespace: rc("ingress-nginx"),
            name: "ingress-nginx-leader".into(),
            agent: None,
        },
        30.0,
    ));
    let ingress_namespaces: Vec<Rc<str>> = cluster
        .teams
        .iter()
        .map(|team| team.namespaces[0].clone())
        .collect();
    let mut ingress_status = CallTemplate::new(known.ingress_nginx, "update", r::INGRESSES);
    ingress_status.namespace = Pick::Any(ingress_namespaces);
    ingress_status.name = Pick::Any(vec!["web".into(), "api".into()]);
    ingress_status.subresource = Some("status");
    list.push(random(
        ActivityKind::Call(ingress_status),
        3.0,
        Rhythm::Constant,
    ));
    for resource in [
        r::PODS,
        r::DEPLOYMENTS,
        r::REPLICASETS,
        r::SERVICES,
        r::CONFIGMAPS,
        r::SECRETS,
        r::INGRESSES,
        r::ENDPOINTSLICES,
        r::SERVICEACCOUNTS,
        r::ROLES,
        r::ROLEBINDINGS,
        r::APPLICATIONS,
        r::CRONJOBS,
        r::JOBS,
        r::NAMESPACES,
    ] {
        list.push(cluster_watch(known.argocd, resource));
    }
    list.push(random(
        ActivityKind::ArgoRefresh,
        60.0 * cluster.applications.len() as f64,
        Rhythm::Constant,
    ));
    list.push(unscaled(random(
        ActivityKind::ArgoSync,
        0.6,
        Rhythm::WorkingHours {
            utc_offset_minutes: 60,
        },
    )));
    list.push(every(ActivityKind::HealthCheck, 10.0));

    // CI: weekday bursts in the company's timezone.
    list.push(unscaled(random(
        ActivityKind::ContinuousIntegration,
        2.5,
        Rhythm::WorkingHours {
            utc_offset_minutes: 60,
        },
    )));

    // Applications.
    for (index, app) in cluster.applications.iter().enumerate() {
        // Some applications read their configuration on every request, some once a minute.
        let chattiness = [900.0, 120.0, 500.0, 60.0, 700.0, 300.0][index % 6];
        list.push(random(
            ActivityKind::ApplicationConfig { app: index },
            chattiness,
            Rhythm::Traffic,
        ));
        list.push(random(
            ActivityKind::ApplicationSecret { app: index },
            chattiness / 10.0,
            Rhythm::Traffic,
        ));
        if index % 4 == 1 {
            list.push(every(
                ActivityKind::LeaderElection {
                    actor: app.identity,
                    namespace: app.namespace.clone(),
                    name: format!("{}-leader", app.name),
                    agent: None,
                },
                15.0,
            ));
        }
    }

    // Humans.
    for (index, human) in cluster.humans.iter().enumerate() {
        list.push(unscaled(random(
            ActivityKind::HumanSession { human: index },
            human.sessions_per_hour,
            Rhythm::WorkingHours {
                utc_offset_minutes: human.utc_offset_minutes,
            },
        )));
    }
    list
}

impl Engine {
    /// Runs every activity due before `until`, scheduling their calls.
    pub(crate) fn run_activities(
        &mut self,
        activities: &mut [Activity],
        until: i64,
        machine_scale: f64,
    ) {
        for activity in activities.iter_mut() {
            let scale = if activity.scaled { machine_scale } else { 1.0 };
            loop {
                let at = activity.next_at;
                if at >= until {
                    break;
                }
                match activity.timing {
                    Timing::Every { period, jitter } => {
                        self.fire(&activity.kind, at);
                        // Periodic work keeps its real period; only low rates slow it down.
                        let period = period as f64 / scale.min(1.0);
                        let jittered =
                            period * (1.0 + jitter * (self.rng.random::<f64>() * 2.0 - 1.0));
                        activity.next_at = at + jittered.max(1000.0) as i64;
                    }
                    Timing::Random { per_hour } => {
                        if self.rng.random::<f64>() < activity.rhythm.at(at) {
                            self.fire(&activity.kind, at);
                        }
                        let rate_per_micro = per_hour * scale / HOUR as f64;
                        let gap =
                            -(1.0 - self.rng.random::<f64>()).ln() / rate_per_micro.max(1e-15);
                        activity.next_at = at + gap.clamp(1000.0, 30.0 * DAY as f64) as i64;
                    }
                }
            }
        }
    }

    /// Spreads each activity's first occurrence over its period.
    pub(crate) fn stagger(&mut self, activities: &mut [Activity], start: i64, machine_scale: f64) {
        for activity in activities.iter_mut() {
            let scale = if activity.scaled { machine_scale } else { 1.0 };
            let span = match activity.timing {
                Timing::Every { period, .. } => period as f64 / scale.min(1.0),
                Timing::Random { per_hour } => HOUR as f64 / (per_hour * scale).max(1e-9),
            };
            activity.next_at = start + (self.rng.random::<f64>() * span.min(DAY as f64)) as i64;
        }
    }

    fn fire(&mut self, kind: &ActivityKind, ts: i64) {
        match kind {
            ActivityKind::Call(template) => {
                let call = self.call_from_template(template, None);
                self.issue(ts, call);
            }
            ActivityKind::Watch(template) => {
                let timeout = self.rng.random_range(300..600u32);
                let call = self.call_from_template(template, Some(timeout));
                self.issue(ts, call);
            }
            ActivityKind::LeaderElection {
                actor,
                namespace,
                name,
                agent,
            } => {
                let mut get = Call::resource(*actor, "get", r::LEASES)
                    .namespace(namespace)
                    .name(name.clone())
                    .query("?timeout=5s");
                get.user_agent = agent.clone();
                let mut update = get.clone();
                update.verb = "update";
                // Now and then another candidate won the race.
                update.conflict = self.rng.random_range(0..400) == 0;
                self.issue(ts, get);
                let delay = self.rng.random_range(2_000..9_000);
                self.issue(ts + delay, update);
            }
            ActivityKind::NodeLease { node } => {
                let node = &self.cluster.nodes[*node];
                let call = Call::resource(node.identity, "update", r::LEASES)
                    .namespace(&rc("kube-node-lease"))
                    .name(node.name.clone())
                    .query("?timeout=10s");
                self.issue(ts, call);
            }
            ActivityKind::NodeHeartbeat { node } => {
                let node = &self.cluster.nodes[*node];
                let call = Call::resource(node.identity, "get", r::NODES)
                    .name(node.name.clone())
                    .query("?resourceVersion=0&timeout=10s");
                self.issue(ts, call);
            }
            ActivityKind::NodeStatusPatch { node } => {
                let node = &self.cluster.nodes[*node];
                let call = Call::resource(node.identity, "patch", r::NODES)
                    .name(node.name.clone())
                    .subresource("status")
                    .query("?timeout=10s");
                self.issue(ts, call);
            }
            ActivityKind::PodStatus { node } => {
                if let Some((namespace, pod)) = self.pod_on_node(*node) {
                    let kubelet = self.cluster.nodes[*node].identity;
                    let get = Call::resource(kubelet, "get", r::PODS)
                        .namespace(&namespace)
                        .name(pod.clone());
                    let patch = Call::resource(kubelet, "patch", r::PODS)
                        .namespace(&namespace)
                        .name(pod)
                        .subresource("status");
                    self.issue(ts, get);
                    let delay = self.rng.random_range(3_000..20_000);
                    self.issue(ts + delay, patch);
                }
            }
            ActivityKind::NodeEvents { node } => {
                let kubelet = self.cluster.nodes[*node].identity;
                let namespace = self
                    .pod_on_node(*node)
                    .map(|(namespace, _)| namespace)
                    .unwrap_or_else(|| rc("default"));
                self.issue(
                    ts,
                    Call::resource(kubelet, "create", r::EVENTS).namespace(&namespace),
                );
            }
            ActivityKind::PodTokens { node } => {
                let node_index = *node;
                let candidates: Vec<(Rc<str>, String, String)> = self
                    .cluster
                    .applications
                    .iter()
                    .filter(|app| app.pods.iter().any(|pod| pod.node == node_index))
                    .map(|app| {
                        (
                            app.namespace.clone(),
                            app.name.clone(),
                            app.pods[0].name.clone(),
                        )
                    })
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let (namespace, account, _) =
                    candidates[self.rng.random_range(0..candidates.len())].clone();
                let kubelet = self.cluster.nodes[node_index].identity;
                let call = Call::resource(kubelet, "create", r::SERVICEACCOUNTS)
                    .namespace(&namespace)
                    .name(account)
                    .subresource("token");
                self.issue(ts, call);
            }
            ActivityKind::Discovery { actor } => {
                let paths = [
                    "/api",
                    "/apis",
                    "/apis/apps/v1",
                    "/apis/batch/v1",
                    "/apis/discovery.k8s.io/v1",
                    "/apis/networking.k8s.io/v1",
                ];
                let count = self.rng.random_range(1..3);
                for offset in 0..count {
                    let path = paths[self.rng.random_range(0..paths.len())];
                    self.issue(
                        ts + offset * 3_000,
                        Call::path(*actor, path).query("?timeout=32s"),
                    );
                }
            }
            ActivityKind::ApplicationConfig { app } => {
                let app = &self.cluster.applications[*app];
                let call = Call::resource(app.identity, "get", r::CONFIGMAPS)
                    .namespace(&app.namespace)
                    .name(format!("{}-config", app.name));
                self.issue(ts, call);
            }
            ActivityKind::ApplicationSecret { app } => {
                let app = &self.cluster.applications[*app];
                let call = Call::resource(app.identity, "get", r::SECRETS)
                    .namespace(&app.namespace)
                    .name(format!("{}-credentials", app.name));
                self.issue(ts, call);
            }
            ActivityKind::ControllerTokens => {
                let controllers = [
                    "deployment-controller",
                    "replicaset-controller",
                    "endpointslice-controller",
                    "job-controller",
                    "cronjob-controller",
                    "generic-garbage-collector",
                    "resourcequota-controller",
                    "namespace-controller",
                    "node-controller",
                    "attachdetach-controller",
                    "persistent-volume-binder",
                    "certificate-controller",
                ];
                let account = controllers[self.rng.random_range(0..controllers.len())];
                let call = Call::resource(
                    self.cluster.known.controller_manager,
                    "create",
                    r::SERVICEACCOUNTS,
                )
                .namespace(&rc("kube-system"))
                .name(account)
                .subresource("token");
                self.issue(ts, call);
            }
            ActivityKind::HumanSession { human } => self.human_session(*human, ts, None),
            ActivityKind::ContinuousIntegration => {
                let app = self.rng.random_range(0..self.cluster.applications.len());
                self.ci_pipeline(app, ts);
            }
            ActivityKind::ArgoRefresh => {
                let app = Cluster::pick(&mut self.rng, &self.cluster.applications)
                    .name
                    .clone();
                let actor = self.cluster.known.argocd;
                let call = Call::resource(actor, "patch", r::APPLICATIONS)
                    .namespace(&rc("argocd"))
                    .name(app);
                self.issue(ts, call);
            }
            ActivityKind::ArgoSync => {
                let app_index = self.rng.random_range(0..self.cluster.applications.len());
                let actor = self.cluster.known.argocd;
                let app = &self.cluster.applications[app_index];
                let (namespace, name) = (app.namespace.clone(), app.name.clone());
                let get = Call::resource(actor, "get", r::DEPLOYMENTS)
                    .namespace(&namespace)
                    .name(name.clone());
                let patch = Call::resource(actor, "patch", r::DEPLOYMENTS)
                    .namespace(&namespace)
                    .name(name.clone())
                    .query("?fieldManager=argocd-controller&force=true");
                let config = Call::resource(actor, "patch", r::CONFIGMAPS)
                    .namespace(&namespace)
                    .name(format!("{name}-config"))
                    .query("?fieldManager=argocd-controller&force=true");
                self.issue(ts, get);
                self.issue(ts + 40_000, config);
                self.issue(ts + 90_000, patch);
                self.rollout(app_index, ts + 150_000);
                let status = Call::resource(actor, "patch", r::APPLICATIONS)
                    .namespace(&rc("argocd"))
                    .name(name);
                self.schedule(ts + 2 * MICROS_PER_SECOND, status);
            }
            ActivityKind::CronJob { app } => self.cron_job(*app, ts),
            ActivityKind::EndpointSlices => {
                let app = Cluster::pick(&mut self.rng, &self.cluster.applications);
                let name = format!("{}-{}", app.name, &app.replica_set_hash[..5]);
                let call = Call::resource(
                    self.cluster.known.endpointslice_controller,
                    "update",
                    r::ENDPOINTSLICES,
                )
                .namespace(&app.namespace.clone())
                .name(name);
                self.issue(ts, call);
            }
            ActivityKind::DeploymentStatus => {
                let app = Cluster::pick(&mut self.rng, &self.cluster.applications);
                let call = Call::resource(
                    self.cluster.known.deployment_controller,
                    "update",
                    r::DEPLOYMENTS,
                )
                .namespace(&app.namespace.clone())
                .name(app.name.clone())
                .subresource("status");
                self.issue(ts, call);
            }
            ActivityKind::PrometheusConfig => {
                let actor = self.cluster.known.prometheus_operator;
                let monitoring = rc("monitoring");
                let get = Call::resource(actor, "get", r::SECRETS)
                    .namespace(&monitoring)
                    .name("prometheus-k8s");
                let update = Call::resource(actor, "update", r::SECRETS)
                    .namespace(&monitoring)
                    .name("prometheus-k8s");
                let status = Call::resource(actor, "update", r::PROMETHEUSES)
                    .namespace(&monitoring)
                    .name("k8s")
                    .subresource("status");
                self.issue(ts, get);
                self.issue(ts + 8_000, update);
                if self.rng.random_range(0..3) == 0 {
                    self.issue(ts + 30_000, status);
                }
            }
            ActivityKind::CaBundleInjection => {
                let actor = self.cluster.known.cert_manager_cainjector;
                let (resource, name) = if self.rng.random_range(0..2) == 0 {
                    (r::VALIDATINGWEBHOOKCONFIGURATIONS, "cert-manager-webhook")
                } else {
                    (r::MUTATINGWEBHOOKCONFIGURATIONS, "cert-manager-webhook")
                };
                let bundle = format!(
                    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM{}",
                    json::name_suffix(&mut self.rng, 24)
                );
                let patch = json!({"webhooks": [{"name": "webhook.cert-manager.io", "clientConfig": {"caBundle": bundle}}]});
                let object = webhook_object(
                    resource,
                    name,
                    "cert-manager-webhook",
                    "cert-manager",
                    &bundle,
                    "Fail",
                    self.resource_version,
                );
                let call = Call::resource(actor, "patch", resource)
                    .name(name)
                    .objects(Some(patch), Some(object));
                self.issue(ts, call);
            }
            ActivityKind::HealthCheck => {
                let path = if self.rng.random_range(0..2) == 0 {
                    "/readyz"
                } else {
                    "/livez"
                };
                let actor = self.cluster.known.anonymous;
                self.issue(ts, Call::path(actor, path));
            }
            ActivityKind::FlowControl => {
                let actor = self.cluster.known.api_server;
                let schemas = [
                    "catch-all",
                    "exempt",
                    "global-default",
                    "kube-controller-manager",
                    "kube-scheduler",
                    "kube-system-service-accounts",
                    "probes",
                    "service-accounts",
                    "system-leader-election",
                    "system-node-high",
                    "system-nodes",
                    "workload-leader-election",
                    "endpoint-controller",
                ];
                let levels = [
                    "catch-all",
                    "exempt",
                    "global-default",
                    "leader-election",
                    "node-high",
                    "system",
                    "workload-high",
                    "workload-low",
                ];
                let call = if self.rng.random_range(0..3) == 0 {
                    Call::resource(actor, "get", r::PRIORITYLEVELCONFIGURATIONS)
                        .name(levels[self.rng.random_range(0..levels.len())])
                } else {
                    Call::resource(actor, "get", r::FLOWSCHEMAS)
                        .name(schemas[self.rng.random_range(0..schemas.len())])
                };
                self.issue(ts, call);
            }
        }
    }

    fn call_from_template(&mut self, template: &CallTemplate, watch_timeout: Option<u32>) -> Call {
        let mut call = Call::resource(template.actor, template.verb, template.resource);
        if let Some(namespace) = template.namespace.choose(&mut self.rng) {
            call = call.namespace(&namespace);
        }
        if let Some(name) = template.name.choose(&mut self.rng) {
            call = call.name(name);
        }
        if let Some(subresource) = template.subresource {
            call = call.subresource(subresource);
        }
        call.query = match (watch_timeout, template.query) {
            (Some(timeout), _) => {
                let version = self.resource_version - self.rng.random_range(0..5_000);
                call.duration_us = Some(i64::from(timeout) * MICROS_PER_SECOND);
                watch_query(version, timeout, template.selector.as_deref())
            }
            (None, QueryStyle::None) => String::new(),
            (None, QueryStyle::Timeout(seconds)) => format!("?timeout={seconds}s"),
        };
        call.source_ip = template.source_ip.clone();
        call.user_agent = template.user_agent.clone();
        call
    }

    fn pod_on_node(&mut self, node: usize) -> Option<(Rc<str>, String)> {
        let candidates: Vec<(Rc<str>, String)> = self
            .cluster
            .applications
            .iter()
            .flat_map(|app| {
                app.pods
                    .iter()
                    .filter(|pod| pod.node == node)
                    .map(|pod| (app.namespace.clone(), pod.name.clone()))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.random_range(0..candidates.len())].clone())
    }

    /// A deployment's new ReplicaSet replaces its pods: the controllers,
    /// scheduler and kubelets each play their part.
    pub(crate) fn rollout(&mut self, app_index: usize, ts: i64) {
        let known = &self.cluster.known;
        let (deployment_controller, replicaset_controller, scheduler, endpointslice_controller) = (
            known.deployment_controller,
            known.replicaset_controller,
            known.scheduler,
            known.endpointslice_controller,
        );
        let new_hash = json::name_suffix(&mut self.rng, 10);
        let app = &self.cluster.applications[app_index];
        let namespace = app.namespace.clone();
        let name = app.name.clone();
        let old_pods: Vec<(String, String)> = app
            .pods
            .iter()
            .map(|pod| (pod.name.clone(), pod.uid.clone()))
            .collect();
        let replicas = app.replicas;
        let mut step = ts + 20_000;
        let status = Call::resource(deployment_controller, "update", r::DEPLOYMENTS)
            .namespace(&namespace)
            .name(name.clone())
            .subresource("status");
        self.schedule(step, status);
        step += 30_000;
        self.schedule(
            step,
            Call::resource(deployment_controller, "create", r::REPLICASETS).namespace(&namespace),
        );
        let mut new_pods = Vec::new();
        let owner_uid = json::uuid_string(&mut self.rng);
        for index in 0..replicas {
            step += self.rng.random_range(80_000..400_000);
            let pod_name = format!("{name}-{new_hash}-{}", json::name_suffix(&mut self.rng, 5));
            let node = self
                .rng
                .random_range(1..self.cluster.nodes.len().max(2))
                .min(self.cluster.nodes.len() - 1);
            let uid = json::uuid_string(&mut self.rng);
            let version = self.next_resource_version();
            let app = &self.cluster.applications[app_index];
            let (request, response) = pod_objects(
                app, &pod_name, &new_hash, &uid, &owner_uid, version, step, false,
            );
            let create = Call::resource(replicaset_controller, "create", r::PODS)
                .namespace(&namespace)
                .objects(Some(request), Some(response));
            let mut create = create;
            create.extra_annotations =
                Some(",\"pod-security.kubernetes.io/enforce-policy\":\"restricted:latest\"");
            self.schedule(step, create);
            let binding = Call::resource(scheduler, "create", r::PODS)
                .namespace(&namespace)
                .name(pod_name.clone())
                .subresource("binding");
            let delay = self.rng.random_range(4_000..40_000);
            self.schedule(step + delay, binding);
            self.schedule(
                step + 60_000,
                Call::resource(scheduler, "create", r::EVENTS).namespace(&namespace),
            );
            let kubelet = self.cluster.nodes[node].identity;
            let running = step + self.rng.random_range(1_500_000..6_000_000);
            let patch = Call::resource(kubelet, "patch", r::PODS)
                .namespace(&namespace)
                .name(pod_name.clone())
                .subresource("status");
            self.schedule(running, patch);
            self.schedule(
                running + 40_000,
                Call::resource(kubelet, "create", r::EVENTS).namespace(&namespace),
            );
            let slices = Call::resource(endpointslice_controller, "update", r::ENDPOINTSLICES)
                .namespace(&namespace)
                .name(format!("{name}-{}", json::name_suffix(&mut self.rng, 5)));
            self.schedule(running + 200_000, slices);
            if let Some((old, old_uid)) = old_pods.get(index) {
                let delete = Call::resource(replicaset_controller, "delete", r::PODS)
                    .namespace(&namespace)
                    .name(old.clone())
                    .objects(Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": old_uid}})), None);
                self.schedule(running + 500_000, delete);
            }
            new_pods.push(super::cluster::Pod {
                name: pod_name,
                node,
                uid,
            });
        }
        let update = Call::resource(replicaset_controller, "update", r::REPLICASETS)
            .namespace(&namespace)
            .name(format!("{name}-{new_hash}"))
            .subresource("status");
        self.schedule(step + 7 * MICROS_PER_SECOND, update);
        let app = &mut self.cluster.applications[app_index];
        app.pods = new_pods;
        app.replica_set_hash = new_hash;
    }

    fn cron_job(&mut self, app_index: usize, ts: i64) {
        let known = &self.cluster.known;
        let (cronjob_controller, job_controller, scheduler, ttl_controller) = (
            known.cronjob_controller,
            known.job_controller,
            known.scheduler,
            known.ttl_controller,
        );
        let app = &self.cluster.applications[app_index];
        let namespace = app.namespace.clone();
        let job = format!("{}-report-{}", app.name, ts / MICROS_PER_SECOND / 60);
        let cron_job = format!("{}-report", app.name);
        self.issue(
            ts,
            Call::resource(cronjob_controller, "create", r::JOBS).namespace(&namespace),
        );
        self.schedule(
            ts + 5_000,
            Call::resource(cronjob_controller, "update", r::CRONJOBS)
                .namespace(&namespace)
                .name(cron_job)
                .subresource("status"),
        );
        let pod = format!("{job}-{}", json::name_suffix(&mut self.rng, 5));
        let uid = json::uuid_string(&mut self.rng);
        let owner_uid = json::uuid_string(&mut self.rng);
        let version = self.next_resource_version();
        let app = &self.cluster.applications[app_index];
        let (request, response) = pod_objects(
            app,
            &pod,
            "job",
            &uid,
            &owner_uid,
            version,
            ts + 60_000,
            true,
        );
        let mut create = Call::resource(job_controller, "create", r::PODS)
            .namespace(&namespace)
            .objects(Some(request), Some(response));
        create.extra_annotations =
            Some(",\"pod-security.kubernetes.io/enforce-policy\":\"restricted:latest\"");
        self.schedule(ts + 60_000, create);
        self.schedule(
            ts + 90_000,
            Call::resource(scheduler, "create", r::PODS)
                .namespace(&namespace)
                .name(pod.clone())
                .subresource("binding"),
        );
        let node = self
            .rng
            .random_range(1..self.cluster.nodes.len().max(2))
            .min(self.cluster.nodes.len() - 1);
        let kubelet = self.cluster.nodes[node].identity;
        let finished = ts + self.rng.random_range(30..240) * MICROS_PER_SECOND;
        self.schedule(
            ts + 3 * MICROS_PER_SECOND,
            Call::resource(kubelet, "patch", r::PODS)
                .namespace(&namespace)
                .name(pod.clone())
                .subresource("status"),
        );
        self.schedule(
            finished,
            Call::resource(kubelet, "patch", r::PODS)
                .namespace(&namespace)
                .name(pod)
                .subresource("status"),
        );
        self.schedule(
            finished + 500_000,
            Call::resource(job_controller, "update", r::JOBS)
                .namespace(&namespace)
                .name(job.clone())
                .subresource("status"),
        );
        let delete = Call::resource(ttl_controller, "delete", r::JOBS)
            .namespace(&namespace)
            .name(job);
        self.schedule(finished + HOUR / 2, delete);
    }

    fn ci_pipeline(&mut self, app_index: usize, ts: i64) {
        let actor = self.cluster.known.ci_deployer;
        let app = &self.cluster.applications[app_index];
        let (namespace, name) = (app.namespace.clone(), app.name.clone());
        let ip = Cluster::pick(&mut self.rng, &self.cluster.identities[actor].source_ips).clone();
        let release = self.rng.random_range(20..400);
        let mut at = ts;
        let mut next = |engine: &mut Engine, call: Call| {
            at += engine.rng.random_range(15_000..120_000);
            engine.schedule(at, call.via_ip(&ip));
        };
        next(self, Call::path(actor, "/version").query("?timeout=32s"));
        next(
            self,
            Call::resource(actor, "list", r::SECRETS)
                .namespace(&namespace)
                .query(format!(
                    "?labelSelector={}",
                    query_escape(&format!("name={name},owner=helm"))
                )),
        );
        next(
            self,
            Call::resource(actor, "create", r::SECRETS).namespace(&namespace),
        );
        next(
            self,
            Call::resource(actor, "get", r::CONFIGMAPS)
                .namespace(&namespace)
                .name(format!("{name}-config")),
        );
        next(
            self,
            Call::resource(actor, "patch", r::CONFIGMAPS)
                .namespace(&namespace)
                .name(format!("{name}-config")),
        );
        next(
            self,
            Call::resource(actor, "get", r::SERVICES)
                .namespace(&namespace)
                .name(name.clone()),
        );
        next(
            self,
            Call::resource(actor, "get", r::DEPLOYMENTS)
                .namespace(&namespace)
                .name(name.clone()),
        );
        next(
            self,
            Call::resource(actor, "patch", r::DEPLOYMENTS)
                .namespace(&namespace)
                .name(name.clone()),
        );
        let rollout_at = at + 50_000;
        // helm --wait polls the deployment and its pods.
        for _ in 0..self.rng.random_range(3..10) {
            at += self.rng.random_range(1_800_000..2_300_000);
            self.schedule(
                at,
                Call::resource(actor, "get", r::DEPLOYMENTS)
                    .namespace(&namespace)
                    .name(name.clone())
                    .via_ip(&ip),
            );
            self.schedule(
                at + 20_000,
                Call::resource(actor, "list", r::PODS)
                    .namespace(&namespace)
                    .query(format!(
                        "?labelSelector={}",
                        query_escape(&format!("app.kubernetes.io/name={name}"))
                    ))
                    .via_ip(&ip),
            );
        }
        at += 300_000;
        self.schedule(
            at,
            Call::resource(actor, "update", r::SECRETS)
                .namespace(&namespace)
                .name(format!("sh.helm.release.v1.{name}.v{release}"))
                .via_ip(&ip),
        );
        // The rollout starts once the deployment was patched (scheduled calls
        // are issued in time order, so this cannot run ahead of the patch).
        self.rollout(app_index, rollout_at);
    }

    /// A human's kubectl session: a burst of commands over some minutes, from
    /// the office or the VPN.
    pub(crate) fn human_session(&mut self, human_index: usize, ts: i64, label: Option<usize>) {
        let human = &self.cluster.humans[human_index];
        let actor = human.identity;
        let role = human.role;
        let ip = if self.rng.random::<f64>() < 0.7 {
            Cluster::pick(&mut self.rng, &human.office_ips).clone()
        } else {
            Cluster::pick(&mut self.rng, &human.vpn_ips).clone()
        };
        let mut namespaces = human.namespaces.clone();
        if let Some((since, namespace)) = &human.adopted_namespace
            && ts >= *since
        {
            namespaces.push(namespace.clone());
        }
        let team = human.team;
        let commands = self.rng.random_range(2..14);
        let mut at = ts;
        if self.rng.random::<f64>() < 0.4 {
            self.schedule(
                at,
                Call::path(actor, "/api")
                    .query("?timeout=32s")
                    .via_ip(&ip)
                    .labeled(label),
            );
            self.schedule(
                at + 25_000,
                Call::path(actor, "/apis")
                    .query("?timeout=32s")
                    .via_ip(&ip)
                    .labeled(label),
            );
            at += 60_000;
        }
        for _ in 0..commands {
            let namespace = Cluster::pick(&mut self.rng, &namespaces).clone();
            let calls = self.human_command(actor, role, team, &namespace, at);
            for (offset, call) in calls {
                self.schedule(at + offset, call.via_ip(&ip).labeled(label));
            }
            at += self.rng.random_range(5..150) * MICROS_PER_SECOND;
        }
    }

    fn pods_in(&mut self, namespace: &str) -> Vec<String> {
        let mut pods: Vec<String> = self
            .cluster
            .applications
            .iter()
            .filter(|app| &*app.namespace == namespace)
            .flat_map(|app| app.pods.iter().map(|pod| pod.name.clone()))
            .collect();
        if pods.is_empty() {
            pods = match namespace {
                "kube-system" => vec![
                    "coredns-7db6d8ff4d-4kx2p".into(),
                    "etcd-cp-1".into(),
                    "kube-apiserver-cp-1".into(),
                    "metrics-server-6d94bc8694-q7v9m".into(),
                ],
                "monitoring" => vec![
                    "prometheus-k8s-0".into(),
                    "kube-state-metrics-5f9d7c8b6-xk2lw".into(),
                ],
                "argocd" => vec![
                    "argocd-application-controller-0".into(),
                    "argocd-server-7c9b8d5f4-p2hqz".into(),
                ],
                "ingress-nginx" => vec!["ingress-nginx-controller-6f8d9c7b5-9wz4t".into()],
                _ => vec![format!("{namespace}-debug")],
            };
        }
        pods
    }

    fn deployments_in(&self, namespace: &str) -> Vec<String> {
        let deployments: Vec<String> = self
            .cluster
            .applications
            .iter()
            .filter(|app| &*app.namespace == namespace)
            .map(|app| app.name.clone())
            .collect();
        if deployments.is_empty() {
            vec![format!("{namespace}-operator")]
        } else {
            deployments
        }
    }

    /// One kubectl command: its calls with offsets from the command's start.
    fn human_command(
        &mut self,
        actor: usize,
        role: HumanRole,
        team: usize,
        namespace: &Rc<str>,
        at: i64,
    ) -> Vec<(i64, Call)> {
        let pods = self.pods_in(namespace);
        let pod = pods[self.rng.random_range(0..pods.len())].clone();
        let deployments = self.deployments_in(namespace);
        let deployment = deployments[self.rng.random_range(0..deployments.len())].clone();
        let roll = self.rng.random_range(0..100);
        let list = |resource| {
            Call::resource(actor, "list", resource)
                .namespace(namespace)
                .query("?limit=500")
        };
        let extra = match role {
            HumanRole::Developer => 0,
            HumanRole::SiteReliability => 1,
            HumanRole::PlatformAdmin => 2,
        };
        if extra >= 1 && roll >= 90 {
            // Cluster-wide looks.
            return match self.rng.random_range(0..4 + extra) {
                0 => vec![(
                    0,
                    Call::resource(actor, "list", r::PODS).query("?limit=500"),
                )],
                1 => vec![(
                    0,
                    Call::resource(actor, "list", r::NODES).query("?limit=500"),
                )],
                2 => vec![(0, Call::resource(actor, "list", r::NODEMETRICS))],
                3 => vec![(
                    0,
                    Call::resource(actor, "list", r::EVENTS).query("?limit=500"),
                )],
                4 => vec![(
                    0,
                    Call::resource(actor, "list", r::NAMESPACES).query("?limit=500"),
                )],
                _ => vec![(
                    0,
                    Call::resource(actor, "list", r::CUSTOMRESOURCEDEFINITIONS).query("?limit=500"),
                )],
            };
        }
        match roll {
            0..=24 => vec![(0, list(r::PODS))],
            25..=32 => vec![(0, list(r::DEPLOYMENTS))],
            33..=41 => {
                let selector = query_escape(&format!(
                    "involvedObject.name={pod},involvedObject.namespace={namespace}"
                ));
                vec![
                    (
                        0,
                        Call::resource(actor, "get", r::PODS)
                            .namespace(namespace)
                            .name(pod.clone()),
                    ),
                    (
                        30_000,
                        Call::resource(actor, "list", r::EVENTS)
                            .namespace(namespace)
                            .query(format!("?fieldSelector={selector}&limit=500")),
                    ),
                ]
            }
            42..=55 => {
                let follow = self.rng.random_range(0..4) == 0;
                let query = if follow {
                    "?container=app&follow=true&tailLines=100"
                } else {
                    "?container=app&tailLines=200"
                };
                let mut call = Call::resource(actor, "get", r::PODS)
                    .namespace(namespace)
                    .name(pod)
                    .subresource("log")
                    .query(query);
                if follow {
                    call.duration_us = Some(self.rng.random_range(20..600) * MICROS_PER_SECOND);
                }
                vec![(0, call)]
            }
            56..=59 => vec![(0, list(r::SERVICES))],
            60..=64 => vec![(
                0,
                Call::resource(actor, "get", r::CONFIGMAPS)
                    .namespace(namespace)
                    .name(format!("{deployment}-config")),
            )],
            65..=67 => vec![(0, list(r::SECRETS))],
            68..=70 => {
                let duration = self.rng.random_range(30..900) * MICROS_PER_SECOND;
                let call = Call::resource(actor, "create", r::PODS)
                    .namespace(namespace)
                    .name(pod.clone())
                    .subresource("exec")
                    .query("?command=sh&container=app&stdin=true&stdout=true&tty=true")
                    .lasting(duration);
                vec![
                    (
                        0,
                        Call::resource(actor, "get", r::PODS)
                            .namespace(namespace)
                            .name(pod),
                    ),
                    (40_000, call),
                ]
            }
            71..=72 => {
                let duration = self.rng.random_range(60..1800) * MICROS_PER_SECOND;
                let call = Call::resource(actor, "create", r::PODS)
                    .namespace(namespace)
                    .name(pod.clone())
                    .subresource("portforward")
                    .lasting(duration);
                vec![
                    (
                        0,
                        Call::resource(actor, "get", r::PODS)
                            .namespace(namespace)
                            .name(pod),
                    ),
                    (35_000, call),
                ]
            }
            73..=74 => {
                let app_index = self
                    .cluster
                    .applications
                    .iter()
                    .position(|app| app.name == deployment && app.namespace == *namespace);
                let patch = Call::resource(actor, "patch", r::DEPLOYMENTS)
                    .namespace(namespace)
                    .name(deployment)
                    .query("?fieldManager=kubectl-rollout");
                if let (Some(app), true) = (app_index, self.would_allow(&patch)) {
                    // The rollout follows the patch.
                    self.rollout(app, at + 10 * MICROS_PER_SECOND);
                }
                vec![(0, patch)]
            }
            75 => vec![(
                0,
                Call::resource(actor, "patch", r::DEPLOYMENTS)
                    .namespace(namespace)
                    .name(deployment)
                    .subresource("scale"),
            )],
            76..=78 => vec![
                (
                    0,
                    Call::resource(actor, "get", r::CONFIGMAPS)
                        .namespace(namespace)
                        .name(format!("{deployment}-config")),
                ),
                (
                    60_000,
                    Call::resource(actor, "patch", r::CONFIGMAPS)
                        .namespace(namespace)
                        .name(format!("{deployment}-config"))
                        .query("?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
                ),
            ],
            79 => vec![(
                0,
                Call::resource(actor, "delete", r::PODS)
                    .namespace(namespace)
                    .name(pod),
            )],
            80..=83 => vec![(
                0,
                Call::resource(actor, "list", r::PODMETRICS).namespace(namespace),
            )],
            84..=87 => vec![(0, list(r::EVENTS))],
            88 => {
                // A typo: the object does not exist.
                let mut call = Call::resource(actor, "get", r::PODS)
                    .namespace(namespace)
                    .name(format!(
                        "{deployment}-{}",
                        json::name_suffix(&mut self.rng, 4)
                    ));
                call.missing = true;
                vec![(0, call)]
            }
            89..=91 if role == HumanRole::Developer => {
                // The odd 403: something outside the developer's grants.
                let other_team = &self.cluster.teams[(team + 1) % self.cluster.teams.len()];
                let other = other_team.namespaces[0].clone();
                match self.rng.random_range(0..4) {
                    0 => vec![(
                        0,
                        Call::resource(actor, "list", r::NODES).query("?limit=500"),
                    )],
                    1 => vec![(
                        0,
                        Call::resource(actor, "list", r::NAMESPACES).query("?limit=500"),
                    )],
                    2 => vec![(
                        0,
                        Call::resource(actor, "list", r::SECRETS)
                            .namespace(&other)
                            .query("?limit=500"),
                    )],
                    _ => vec![(
                        0,
                        Call::resource(actor, "list", r::PODS)
                            .namespace(&rc("kube-system"))
                            .query("?limit=500"),
                    )],
                }
            }
            _ => vec![(0, list(r::INGRESSES))],
        }
    }

    /// Whether `call` would be allowed right now (no side effects besides the cache).
    fn would_allow(&mut self, call: &Call) -> bool {
        let rbac = &self.rbac;
        let identity = &self.cluster.identities[call.actor];
        let super::engine::CallTarget::Resource {
            resource,
            subresource,
            namespace,
            name,
        } = &call.target
        else {
            return true;
        };
        rbac.authorize(&super::rbac::Attributes {
            username: &identity.username,
            groups: &identity.groups,
            verb: call.verb,
            target: super::rbac::Target::Resource {
                api_group: resource.group,
                resource: resource.name,
                subresource: *subresource,
                namespace: namespace.as_deref(),
                name: name.as_deref(),
            },
        })
        .is_some()
    }
}

/// A pod as its controller creates it, and as the API server returns it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pod_objects(
    app: &Application,
    pod_name: &str,
    hash: &str,
    uid: &str,
    owner_uid: &str,
    resource_version: u64,
    ts: i64,
    job: bool,
) -> (Value, Value) {
    let labels = json!({"app.kubernetes.io/name": app.name, "app.kubernetes.io/part-of": app.namespace.trim_end_matches("-staging"), "pod-template-hash": hash});
    let spec = json!({
        "serviceAccountName": app.name,
        "automountServiceAccountToken": true,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app",
            "image": app.image,
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "envFrom": [{"configMapRef": {"name": format!("{}-config", app.name)}}],
            "env": [{"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{}-credentials", app.name), "key": "password"}}}],
            "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"
        }],
        "restartPolicy": if job { "Never" } else { "Always" },
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "enableServiceLinks": false
    });
    let owner_kind = if job { "Job" } else { "ReplicaSet" };
    let owner_name = if job {
        pod_name
            .rsplit_once('-')
            .map(|(prefix, _)| prefix)
            .unwrap_or(pod_name)
            .to_string()
    } else {
        format!("{}-{hash}", app.name)
    };
    let request = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": format!("{}-", pod_name.rsplit_once('-').map(|(prefix, _)| prefix).unwrap_or(pod_name)),
            "creationTimestamp": null,
            "labels": labels,
            "ownerReferences": [{"apiVersion": if job { "batch/v1" } else { "apps/v1" }, "kind": owner_kind, "name": owner_name, "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": spec,
        "status": {}
    });
    let mut response = request.clone();
    if let Some(metadata) = response.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("name".into(), json!(pod_name));
        metadata.insert("namespace".into(), json!(&*app.namespace));
        metadata.insert("uid".into(), json!(uid));
        metadata.insert(
            "resourceVersion".into(),
            json!(resource_version.to_string()),
        );
        metadata.insert("creationTimestamp".into(), json!(json::rfc3339_seconds(ts)));
    }
    if let Some(status) = response.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("phase".into(), json!("Pending"));
        status.insert("qosClass".into(), json!("Burstable"));
    }
    (request, response)
}

/// A webhook configuration object as the API server returns it.
pub(crate) fn webhook_object(
    resource: &ResourceType,
    name: &str,
    service: &str,
    namespace: &str,
    bundle: &str,
    failure_policy: &str,
    resource_version: u64,
) -> Value {
    json!({
        "kind": resource.kind,
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": name, "resourceVersion": resource_version.to_string(), "annotations": {"cert-manager.io/inject-ca-from-secret": "cert-manager/cert-manager-webhook-ca"}},
        "webhooks": [{
            "name": "webhook.cert-manager.io",
            "clientConfig": {"service": {"namespace": namespace, "name": service, "path": "/validate", "port": 443}, "caBundle": bundle},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["cert-manager.io", "acme.cert-manager.io"], "apiVersions": ["v1"], "resources": ["*/*"], "scope": "*"}],
            "failurePolicy": failure_policy,
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": 30,
            "admissionReviewVersions": ["v1"]
        }]
    })
}
