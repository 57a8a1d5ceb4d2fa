//! `auditlens rbac ...` and `auditlens guard ...`: argument structs and the
//! code that runs them. Output goes to stdout, logs to stderr.
//!
//! Exit codes (documented in docs/RBAC.md): 0 success; 1 error (bad file,
//! catalog, TLS...); 2 usage error (clap); 3 `rbac audit --fail-on` found
//! findings at or above the threshold ([`FindingsGate`]).

use super::authorizer::{Authorizer, RequestAttributes, UserInfo, rule_values_text, who_can};
use super::checks::{audit_snapshot_report, write_json, write_sarif, write_table};
use super::config::{GuardConfig, GuardMode, RbacConfig, load_sections};
use super::guard::{Guard, export_policies_yaml};
use super::guard_server::{serve, tls_config_from_pem_files};
use super::recommend::{RecommendOptions, load_requests, recommend, recommend_from_requests};
use super::snapshot::Snapshot;
use super::versions::{
    list_snapshot_versions, load_latest_snapshot, load_snapshot_at, save_snapshot,
};
use super::{RbacError, synthetic};
use crate::cli::GlobalOptions;
use crate::detect::Severity;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an RBAC command did not succeed; [`CommandError::exit_code`] maps it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    /// Boxed: an RBAC error carries DuckDB and I/O errors with their context.
    Rbac(Box<RbacError>),
    #[error(transparent)]
    Gate(#[from] FindingsGate),
    #[error("{0}")]
    Usage(String),
}

impl From<RbacError> for CommandError {
    fn from(error: RbacError) -> CommandError {
        CommandError::Rbac(Box::new(error))
    }
}

/// The catalog side of RBAC feedback (`rbac accept`, `--mark-applied`):
/// its message, exit code 1 like every other RBAC error.
impl From<crate::feedback::FeedbackError> for CommandError {
    fn from(error: crate::feedback::FeedbackError) -> CommandError {
        RbacError::Invalid(error.to_string()).into()
    }
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Rbac(_) => 1,
            CommandError::Usage(_) => 2,
            CommandError::Gate(_) => FindingsGate::EXIT_CODE,
        }
    }
}

/// `--fail-on` tripped: findings at or above the threshold.
#[derive(Debug, thiserror::Error)]
#[error("{count} finding(s) at or above {threshold} (exit code 3)")]
pub struct FindingsGate {
    pub count: usize,
    pub threshold: Severity,
}

impl FindingsGate {
    pub const EXIT_CODE: u8 = 3;
}

/// `auditlens rbac`: RBAC snapshot, who-can, effective permissions, risk audit, recommendations.
#[derive(Debug, Args)]
pub struct RbacArgs {
    #[command(subcommand)]
    pub command: RbacCommand,
}

/// Where the snapshot comes from.
#[derive(Debug, Clone, Args)]
pub struct SnapshotSource {
    /// A kubectl JSON/YAML dump (file or folder). Without it, the latest
    /// version stored in <data-dir>/catalog.duckdb is used.
    #[arg(long)]
    pub rbac: Option<PathBuf>,
    /// With the catalog: the version in force at this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecommendFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generalize {
    Names,
    Namespaces,
}

#[derive(Debug, Subcommand)]
pub enum RbacCommand {
    /// Who may do VERB on RESOURCE[/SUBRESOURCE] (RESOURCE may be resource.group; a leading / means a non-resource URL).
    WhoCan {
        verb: String,
        resource: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// The API group, if not given as resource.group.
        #[arg(long)]
        api_group: Option<String>,
        /// Consider RoleBindings of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[command(flatten)]
        source: SnapshotSource,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Effective permissions of IDENTITY (username or system:serviceaccount:NS:NAME), with the binding and role granting each.
    Can {
        identity: String,
        /// Extra groups the identity belongs to (implicit groups are added).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        source: SnapshotSource,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Every RBAC_RISKS.md row as a check. Exit code 3 when findings reach --fail-on.
    Audit {
        #[command(flatten)]
        source: SnapshotSource,
        #[arg(long, value_enum, default_value = "table")]
        format: AuditFormat,
        /// Exit with code 3 if any finding is at or above this severity (info|low|medium|high|critical).
        #[arg(long)]
        fail_on: Option<Severity>,
    },
    /// Least-privilege Roles/ClusterRoles + bindings from the identity's allowed requests in the period.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["identity", "all"])))]
    Recommend {
        identity: Option<String>,
        /// Every identity seen in the period.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Widen on purpose (stated in an annotation): names drops resourceNames, namespaces makes one cluster-wide role.
        #[arg(long, value_enum)]
        generalize: Vec<Generalize>,
        /// The current RBAC (for the unused-grant diff); else the catalog's latest, if any.
        #[arg(long)]
        rbac: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "yaml")]
        format: RecommendFormat,
        /// Record in the catalog that this recommendation was applied: every
        /// later `rbac audit` reports the identity's grants beyond it.
        #[arg(long, requires = "identity")]
        mark_applied: bool,
        /// Who applied it (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Accept a finding as a known exception: stored in the catalog with a
    /// reason, an owner and an expiry; `rbac audit` waives matching findings
    /// until it expires.
    Accept {
        /// The check, e.g. R10.
        #[arg(long)]
        check: String,
        /// The finding's subject name (user, group or service account).
        #[arg(long)]
        subject: Option<String>,
        /// User, Group or ServiceAccount.
        #[arg(long)]
        subject_kind: Option<String>,
        /// The service account's namespace.
        #[arg(long)]
        subject_namespace: Option<String>,
        /// As printed in findings: ClusterRoleBinding/NAME or RoleBinding/NS/NAME.
        #[arg(long)]
        binding: Option<String>,
        /// As printed in findings: ClusterRole/NAME or Role/NS/NAME.
        #[arg(long)]
        role: Option<String>,
        /// Where the grant applies (a namespace).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Why it is accepted (mandatory).
        #[arg(long)]
        reason: String,
        /// Who answers for it (default: the actor).
        #[arg(long)]
        owner: Option<String>,
        /// How long (30d, 12h) or until when (YYYY-MM-DD, RFC 3339); default
        /// `[feedback] default_suppression_days`.
        #[arg(long)]
        expires: Option<String>,
        /// Who accepts it (default: $USER).
        #[arg(long)]
        actor: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// List the findings accepted from the command line (active and expired)
    /// and the recommendations marked applied.
    Exceptions {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Store a snapshot version in the catalog, or list the stored versions.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Write a generated snapshot (benchmarks): --roles N --bindings M.
    Synth {
        #[arg(long, default_value_t = 5000)]
        roles: usize,
        #[arg(long, default_value_t = 20000)]
        bindings: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Load a dump and store it as a new version.
    Save {
        #[arg(long)]
        rbac: PathBuf,
        /// When the state was observed (default: now).
        #[arg(long)]
        taken_at: Option<String>,
    },
    /// List stored versions.
    List,
}

/// `auditlens guard`: the admission webhook, or `guard export` for ValidatingAdmissionPolicy YAML.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GuardArgs {
    #[command(subcommand)]
    pub command: Option<GuardCommand>,
    #[command(flatten)]
    pub serve: GuardServeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GuardServeArgs {
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: String,
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Overrides [guard] mode.
    #[arg(long, value_enum)]
    pub mode: Option<GuardMode>,
    /// A snapshot to resolve bound roles (policy critical-binding); else the catalog's latest, if any.
    #[arg(long)]
    pub rbac: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Write the policies as ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding YAML.
    Export {
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long, value_enum)]
        mode: Option<GuardMode>,
    },
}

fn configs(global: &GlobalOptions) -> Result<(RbacConfig, GuardConfig), CommandError> {
    match &global.config {
        Some(path) => Ok(load_sections(path)?),
        None => Ok((RbacConfig::default(), GuardConfig::default())),
    }
}

/// Parses RFC 3339 or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, CommandError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "{text:?} is not a time: use RFC 3339 or YYYY-MM-DD"
            ))
        })
}

fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog.duckdb")
}

fn open_catalog(data_dir: &Path, read_only: bool) -> Result<duckdb::Connection, CommandError> {
    let path = catalog_path(data_dir);
    if read_only && !path.exists() {
        return Err(CommandError::Usage(format!(
            "no --rbac given and no catalog at {}",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| RbacError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let connection = if read_only {
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(RbacError::duckdb("configuring a read-only catalog"))?;
        duckdb::Connection::open_with_flags(&path, config)
    } else {
        duckdb::Connection::open(&path)
    };
    Ok(connection.map_err(RbacError::duckdb(format!("opening {}", path.display())))?)
}

fn load_source(source: &SnapshotSource, global: &GlobalOptions) -> Result<Snapshot, CommandError> {
    if let Some(path) = &source.rbac {
        if source.at.is_some() {
            return Err(CommandError::Usage(
                "--at reads the catalog; it cannot be combined with --rbac".into(),
            ));
        }
        return Ok(Snapshot::load(path)?);
    }
    let connection = open_catalog(&global.data_dir, true)?;
    let found = match &source.at {
        Some(at) => load_snapshot_at(&connection, parse_time(at)?)?,
        None => load_latest_snapshot(&connection)?,
    };
    let (version, snapshot) = found.ok_or_else(|| CommandError::Usage(format!(
        "no stored RBAC snapshot{} in {}: store one with `auditlens rbac snapshot save --rbac FILE`",
        source.at.as_deref().map(|at| format!(" at or before {at}")).unwrap_or_default(),
        catalog_path(&global.data_dir).display()
    )))?;
    tracing::info!(version = version.version, taken_at = %version.taken_at, source = %version.source, "using stored RBAC snapshot");
    Ok(snapshot)
}

/// Splits `resource[.group][/subresource]` (or a `/path`) into request attributes.
pub fn parse_request(
    verb: &str,
    resource: &str,
    api_group: Option<&str>,
    namespace: &str,
    name: &str,
) -> RequestAttributes {
    if resource.starts_with('/') {
        return RequestAttributes::non_resource(verb, resource);
    }
    let (resource_part, subresource) = match resource.split_once('/') {
        Some((resource, subresource)) => (resource, Some(subresource)),
        None => (resource, None),
    };
    let (resource_name, group) = match (api_group, resource_part.split_once('.')) {
        (Some(group), _) => (resource_part, group.to_string()),
        (None, Some((resource, group))) => (resource, group.to_string()),
        (None, None) => (resource_part, String::new()),
    };
    let combined = match subresource {
        Some(subresource) => format!("{resource_name}/{subresource}"),
        None => resource_name.to_string(),
    };
    RequestAttributes::resource(verb, &group, &combined, namespace, name)
}

fn actor_or_user(actor: Option<String>) -> String {
    actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|actor| !actor.trim().is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

/// The accepted findings and applied recommendations of the data folder's
/// catalog, read at each audit (none without a catalog; a catalog that
/// cannot be opened, e.g. held by the daemon, is said so and skipped).
fn catalog_feedback(
    global: &GlobalOptions,
) -> (
    Vec<crate::feedback::rbac::AcceptedFinding>,
    Vec<crate::feedback::rbac::AppliedRecommendation>,
) {
    if !catalog_path(&global.data_dir).exists() {
        return (Vec::new(), Vec::new());
    }
    let read = || -> Result<_, CommandError> {
        let connection = open_catalog(&global.data_dir, true)?;
        Ok((
            crate::feedback::rbac::accepted_findings(&connection)?,
            crate::feedback::rbac::applied_recommendations(&connection)?,
        ))
    };
    read().unwrap_or_else(|error| {
        tracing::warn!(%error, "accepted findings and applied recommendations not read: the audit shows every finding");
        (Vec::new(), Vec::new())
    })
}

/// The table output's two extra sections: waived findings, applied recommendations.
fn write_feedback_table(
    waived: &[crate::feedback::rbac::WaivedFinding],
    checks: &[crate::feedback::rbac::RecommendationCheck],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "ACCEPTED ({} waived)", waived.len())?;
    for entry in waived {
        writeln!(
            out,
            "  {} {} {} {} via {}: {}{}",
            entry.finding.check,
            entry.finding.subject.kind,
            entry.finding.subject.name,
            entry.finding.binding,
            entry.exception,
            entry.reason,
            entry
                .expires_at
                .map(|at| format!(" (until {})", at.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_default()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "RECOMMENDATIONS APPLIED ({})", checks.len())?;
    for check in checks {
        if check.matches {
            writeln!(
                out,
                "  {}: grants match the recommendation {} applied by {}",
                check.identity, check.applied, check.applied_by
            )?;
        } else {
            writeln!(
                out,
                "  {}: {} grant(s) beyond the recommendation {} applied by {}",
                check.identity,
                check.grants_beyond.len(),
                check.applied,
                check.applied_by
            )?;
            for grant in &check.grants_beyond {
                writeln!(
                    out,
                    "    {} {} in {}: {}",
                    grant.binding,
                    grant.role,
                    grant.namespace.as_deref().unwrap_or("cluster-wide"),
                    grant.beyond.join(", ")
                )?;
            }
        }
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CommandError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| RbacError::Invalid(error.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Runs `auditlens rbac ...`.
pub fn run(args: RbacArgs, global: &GlobalOptions) -> Result<(), CommandError> {
    let (rbac_config, _) = configs(global)?;
    match args.command {
        RbacCommand::WhoCan {
            verb,
            resource,
            namespace,
            name,
            api_group,
            all_namespaces,
            source,
            format,
        } => {
            let snapshot = load_source(&source, global)?;
            let authorizer = Authorizer::new(&snapshot);
            let request = parse_request(
                &verb,
                &resource,
                api_group.as_deref(),
                namespace.as_deref().unwrap_or(""),
                name.as_deref().unwrap_or(""),
            );
            let entries = who_can(&authorizer, &request, all_namespaces);
            match format {
                ListFormat::Json => {
                    print_json(&serde_json::json!({"request": request, "subjects": entries}))?
                }
                ListFormat::Table => {
                    println!(
                        "{:<15} {:<50} {:<20} {:<50} {:<45} SCOPE",
                        "KIND", "NAME", "SA NAMESPACE", "BINDING", "ROLE"
                    );
                    for entry in &entries {
                        println!(
                            "{:<15} {:<50} {:<20} {:<50} {:<45} {}",
                            entry.subject.kind,
                            entry.subject.name,
                            entry.subject.namespace.as_deref().unwrap_or("-"),
                            entry.binding,
                            entry.role,
                            entry.namespace.as_deref().unwrap_or("cluster-wide")
                        );
                    }
                }
            }
        }
        RbacCommand::Can {
            identity,
            groups,
            source,
            format,
        } => {
            let snapshot = load_source(&source, global)?;
            let authorizer = Authorizer::new(&snapshot);
            let user = UserInfo::with_implicit_groups(&identity, &groups);
            let grants = authorizer.grants_for(&user);
            match format {
                ListFormat::Json => {
                    print_json(&serde_json::json!({"user": user, "grants": grants}))?
                }
                ListFormat::Table => {
                    println!("identity {} groups [{}]", user.name, user.groups.join(", "));
                    println!(
                        "{:<14} {:<30} {:<20} {:<30} {:<16} {:<16} {:<45} {:<40} VIA",
                        "SCOPE",
                        "VERBS",
                        "API GROUPS",
                        "RESOURCES",
                        "NAMES",
                        "URLS",
                        "BINDING",
                        "ROLE"
                    );
                    for grant in &grants {
                        println!(
                            "{:<14} {:<30} {:<20} {:<30} {:<16} {:<16} {:<45} {:<40} {} {}",
                            grant.namespace.as_deref().unwrap_or("cluster-wide"),
                            grant.rule.verbs.join(","),
                            rule_values_text(&grant.rule.api_groups),
                            rule_values_text(&grant.rule.resources),
                            rule_values_text(&grant.rule.resource_names),
                            rule_values_text(&grant.rule.non_resource_urls),
                            grant.binding,
                            grant.role,
                            grant.subject.kind,
                            grant.subject.name
                        );
                    }
                }
            }
        }
        RbacCommand::Audit {
            source,
            format,
            fail_on,
        } => {
            let snapshot = load_source(&source, global)?;
            let now = Utc::now();
            let report = audit_snapshot_report(&snapshot, &rbac_config, now.date_naive());
            // Findings accepted and recommendations applied from the command line.
            let (accepted, applied) = catalog_feedback(global);
            let report = crate::feedback::rbac::apply_accepted(report, &accepted, now);
            let extras = (!accepted.is_empty() || !applied.is_empty()).then(|| {
                (
                    crate::feedback::rbac::waived(&report, &accepted, &rbac_config),
                    crate::feedback::rbac::check_applied(&snapshot, &applied),
                )
            });
            for expired in &report.expired_exceptions {
                tracing::warn!(exception = %expired, "RBAC exception expired: its findings are reported again");
            }
            if !report.suppressed.is_empty() {
                tracing::info!(
                    count = report.suppressed.len(),
                    "findings waived by unexpired exceptions"
                );
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = match (format, &extras) {
                (AuditFormat::Table, extras) => {
                    write_table(&report.findings, &mut out).and_then(|()| match extras {
                        Some((waived, checks)) => write_feedback_table(waived, checks, &mut out),
                        None => Ok(()),
                    })
                }
                (AuditFormat::Json, None) => write_json(&report.findings, &mut out),
                (AuditFormat::Json, Some((waived, checks))) => serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({
                        "findings": report.findings,
                        "accepted": waived,
                        "recommendations_applied": checks,
                    }),
                )
                .map_err(std::io::Error::other)
                .and_then(|()| std::io::Write::write_all(&mut out, b"\n")),
                (AuditFormat::Sarif, _) => write_sarif(&report.findings, &mut out),
            };
            written
                .and_then(|()| std::io::Write::flush(&mut out))
                .map_err(|source| RbacError::Io {
                    path: PathBuf::from("stdout"),
                    source,
                })?;
            if let Some(threshold) = fail_on {
                let count = report
                    .findings
                    .iter()
                    .filter(|finding| finding.severity >= threshold)
                    .count();
                if count > 0 {
                    return Err(FindingsGate { count, threshold }.into());
                }
            }
        }
        RbacCommand::Recommend {
            identity,
            all,
            since,
            until,
            generalize,
            rbac,
            format,
            mark_applied,
            actor,
        } => {
            let options = RecommendOptions {
                identity: if all { None } else { identity },
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                generalize_names: generalize.contains(&Generalize::Names),
                generalize_namespaces: generalize.contains(&Generalize::Namespaces),
            };
            let current = match rbac {
                Some(path) => Some(Snapshot::load(&path)?),
                None if catalog_path(&global.data_dir).exists() => {
                    load_latest_snapshot(&open_catalog(&global.data_dir, true)?)?
                        .map(|(_, snapshot)| snapshot)
                }
                None => None,
            };
            let (recommendations, groups) = if mark_applied {
                // The groups its requests carried: their bindings are its grants too.
                let connection = duckdb::Connection::open_in_memory()
                    .map_err(RbacError::duckdb("opening an in-memory DuckDB"))?;
                crate::store::views::install_views(&connection, &global.data_dir).map_err(
                    |source| RbacError::Store {
                        context: format!("reading {}", global.data_dir.display()),
                        source: Box::new(source),
                    },
                )?;
                let requests = load_requests(&connection, &options)?;
                let groups: std::collections::BTreeSet<String> = requests
                    .iter()
                    .flat_map(|request| request.groups.iter().cloned())
                    .collect();
                (
                    recommend_from_requests(&requests, current.as_ref(), &options),
                    groups.into_iter().collect::<Vec<_>>(),
                )
            } else {
                (
                    recommend(&global.data_dir, current.as_ref(), &options)?,
                    Vec::new(),
                )
            };
            if recommendations.is_empty() {
                return Err(RbacError::Invalid(format!(
                    "no requests{} in the period under {}",
                    options
                        .identity
                        .as_deref()
                        .map(|identity| format!(" by {identity}"))
                        .unwrap_or_default(),
                    global.data_dir.display()
                ))
                .into());
            }
            match format {
                RecommendFormat::Json => print_json(&recommendations)?,
                RecommendFormat::Yaml => {
                    for recommendation in &recommendations {
                        print!("{}", recommendation.to_yaml()?);
                    }
                }
            }
            if mark_applied {
                let connection = crate::feedback::cli::open_catalog_creating(&global.data_dir)?;
                let actor = actor_or_user(actor);
                for recommendation in &recommendations {
                    let applied = crate::feedback::rbac::mark_applied(
                        &connection,
                        recommendation,
                        &groups,
                        &actor,
                        &crate::feedback::SystemClock,
                    )?;
                    eprintln!(
                        "marked applied as {} ({} rules) by {}: every later `rbac audit` reports {}'s grants beyond it",
                        applied.id,
                        applied.rules.len(),
                        applied.applied_by,
                        applied.identity
                    );
                }
            }
        }
        RbacCommand::Accept {
            check,
            subject,
            subject_kind,
            subject_namespace,
            binding,
            role,
            namespace,
            reason,
            owner,
            expires,
            actor,
            format,
        } => {
            let config = crate::config::Config::load(global.config.as_deref())
                .map_err(|error| CommandError::Usage(error.to_string()))?;
            let now = Utc::now();
            let expires_at = match expires.as_deref() {
                None => {
                    now + chrono::Duration::days(i64::from(
                        config.feedback.default_suppression_days,
                    ))
                }
                Some(text) => match crate::feedback::parse_duration(text) {
                    Ok(duration) => now + duration,
                    Err(_) => parse_time(text)?,
                },
            };
            let accepted_by = actor_or_user(actor);
            let connection = crate::feedback::cli::open_catalog_creating(&global.data_dir)?;
            let accepted = crate::feedback::rbac::accept(
                &connection,
                &crate::feedback::rbac::NewAcceptance {
                    selector: crate::feedback::rbac::FindingSelector {
                        check,
                        subject_kind,
                        subject_name: subject,
                        subject_namespace,
                        binding,
                        role,
                        namespace,
                    },
                    reason,
                    owner: owner.unwrap_or_else(|| accepted_by.clone()),
                    accepted_by,
                    expires_at,
                },
                &crate::feedback::SystemClock,
            )?;
            match format {
                ListFormat::Json => print_json(&accepted)?,
                ListFormat::Table => println!("accepted {}", accepted.describe()),
            }
        }
        RbacCommand::Exceptions { format } => {
            let (accepted, applied) = if catalog_path(&global.data_dir).exists() {
                let connection = open_catalog(&global.data_dir, true)?;
                (
                    crate::feedback::rbac::accepted_findings(&connection)?,
                    crate::feedback::rbac::applied_recommendations(&connection)?,
                )
            } else {
                (Vec::new(), Vec::new())
            };
            let now = Utc::now();
            match format {
                ListFormat::Json => print_json(&serde_json::json!({
                    "accepted": accepted.iter().map(|entry| serde_json::json!({
                        "status": if entry.is_active(now) { "active" } else { "expired" },
                        "exception": entry,
                    })).collect::<Vec<_>>(),
                    "recommendations_applied": applied,
                }))?,
                ListFormat::Table => {
                    for entry in &accepted {
                        let status = if entry.is_active(now) {
                            "active"
                        } else {
                            "expired"
                        };
                        println!("{status:<8} {}", entry.describe());
                    }
                    for entry in &applied {
                        println!(
                            "applied  {} {}: {} rules, by {} at {}",
                            entry.id,
                            entry.identity,
                            entry.rules.len(),
                            entry.applied_by,
                            entry.applied_at.format("%Y-%m-%dT%H:%M:%SZ")
                        );
                    }
                }
            }
        }
        RbacCommand::Snapshot { command } => match command {
            SnapshotCommand::Save { rbac, taken_at } => {
                let snapshot = Snapshot::load(&rbac)?;
                let taken_at = taken_at
                    .as_deref()
                    .map(parse_time)
                    .transpose()?
                    .unwrap_or_else(Utc::now);
                let connection = open_catalog(&global.data_dir, false)?;
                let version = save_snapshot(
                    &connection,
                    &snapshot,
                    &rbac.display().to_string(),
                    taken_at,
                )?;
                println!(
                    "stored RBAC snapshot version {version} ({} RBAC objects, taken at {})",
                    snapshot.rbac_object_count(),
                    taken_at.to_rfc3339()
                );
            }
            SnapshotCommand::List => {
                let connection = open_catalog(&global.data_dir, true)?;
                for version in list_snapshot_versions(&connection)? {
                    println!(
                        "{:>6} {} {:>8} {}",
                        version.version, version.taken_at, version.object_count, version.source
                    );
                }
            }
        },
        RbacCommand::Synth {
            roles,
            bindings,
            seed,
            output,
        } => {
            let snapshot = synthetic::generate_snapshot(roles, bindings, seed);
            let json = snapshot.to_list_json()?;
            std::fs::write(&output, json).map_err(|source| RbacError::Io {
                path: output.clone(),
                source,
            })?;
            println!(
                "wrote {} roles and {} bindings to {}",
                roles,
                bindings,
                output.display()
            );
        }
    }
    Ok(())
}

/// Runs `auditlens guard` (serve until Ctrl-C / SIGTERM) or `auditlens guard export`.
pub fn run_guard(args: GuardArgs, global: &GlobalOptions) -> Result<(), CommandError> {
    let (rbac_config, mut guard_config) = configs(global)?;
    match args.command {
        Some(GuardCommand::Export { output, mode }) => {
            if let Some(mode) = mode {
                guard_config.mode = mode;
            }
            let yaml = export_policies_yaml(&guard_config, &rbac_config);
            match output {
                Some(path) => std::fs::write(&path, yaml).map_err(|source| RbacError::Io {
                    path: path.clone(),
                    source,
                })?,
                None => print!("{yaml}"),
            }
            Ok(())
        }
        None => {
            let serve_args = args.serve;
            if let Some(mode) = serve_args.mode {
                guard_config.mode = mode;
            }
            let (Some(cert), Some(key)) = (&serve_args.tls_cert, &serve_args.tls_key) else {
                return Err(CommandError::Usage("auditlens guard needs --tls-cert and --tls-key (the API server only calls webhooks over HTTPS)".into()));
            };
            let tls = tls_config_from_pem_files(cert, key)?;
            let snapshot = match &serve_args.rbac {
                Some(path) => Some(Arc::new(Snapshot::load(path)?)),
                None if catalog_path(&global.data_dir).exists() => {
                    load_latest_snapshot(&open_catalog(&global.data_dir, true)?)?
                        .map(|(_, snapshot)| Arc::new(snapshot))
                }
                None => None,
            };
            let cluster = global.cluster.clone().unwrap_or_else(|| "default".into());
            let guard = Arc::new(Guard::new(guard_config, rbac_config, snapshot, cluster).with_anomaly_sink(Arc::new(|anomaly| {
                // Standalone: anomalies go to the log as JSON; the daemon wires its alert stream instead.
                tracing::warn!(anomaly = %serde_json::to_string(&anomaly).unwrap_or_default(), "guard anomaly");
            })));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|source| RbacError::Io {
                    path: PathBuf::from("tokio runtime"),
                    source,
                })?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&serve_args.listen)
                    .await
                    .map_err(|source| RbacError::Io {
                        path: PathBuf::from(&serve_args.listen),
                        source,
                    })?;
                let address = listener.local_addr().map_err(|source| RbacError::Io {
                    path: PathBuf::from(&serve_args.listen),
                    source,
                })?;
                eprintln!(
                    "auditlens guard listening on https://{address}/validate (mode {:?})",
                    guard.config.mode
                );
                serve(guard, listener, tls, shutdown_signal()).await;
                Ok::<(), CommandError>(())
            })
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
