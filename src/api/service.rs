//! The `auditlens.v1.AuditLens` RPCs.
//!
//! Handlers are thin: they validate, move blocking work (DuckDB, files) to
//! blocking threads, and log one line per request with the caller, the
//! outcome and the duration (plus the query hash for SQL; never the token,
//! never the SQL text itself, which may hold sensitive literals).

use super::auth::CallerAuth;
use super::catalog::{self, AnomalyQuery, SharedCatalog};
use super::proto::audit_lens_server::AuditLens;
use super::proto::{self, query_response::Part};
use super::server::{ApiConfig, ApiState};
use super::{ApiError, files, profile};
use crate::store::query::{
    QueryError, QueryOutput, QueryRequest, QueryRunner, ResultEncoding, query_hash,
};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The service: shared state plus the query admission control.
pub struct AuditLensService {
    state: ApiState,
    runner: QueryRunner,
    /// Permits for queries running or waiting; none left → RESOURCE_EXHAUSTED.
    admission: Arc<Semaphore>,
    admission_limit: usize,
    /// Permits for queries running.
    running: Arc<Semaphore>,
    watch_poll_interval: Duration,
    /// Becomes true when the server starts shutting down: open
    /// WatchAnomalies streams end so the graceful shutdown can finish.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl AuditLensService {
    pub fn new(
        state: ApiState,
        runner: QueryRunner,
        config: &ApiConfig,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let running = config.max_concurrent_queries.max(1);
        let admission_limit = running + config.max_queued_queries;
        AuditLensService {
            state,
            runner,
            admission: Arc::new(Semaphore::new(admission_limit)),
            admission_limit,
            running: Arc::new(Semaphore::new(running)),
            watch_poll_interval: config.watch_poll_interval,
            stopping,
        }
    }

    fn catalog(&self) -> Result<SharedCatalog, ApiError> {
        self.state
            .catalog
            .clone()
            .ok_or_else(|| ApiError::Unavailable("the catalog is not open yet".into()))
    }
}

/// One log line per request, written when the handler returns.
struct RequestLog {
    method: &'static str,
    caller: String,
    auth: &'static str,
    started: Instant,
    query_hash: Option<String>,
    outcome: Option<String>,
}

impl RequestLog {
    fn start<T>(method: &'static str, request: &Request<T>) -> RequestLog {
        let caller = request
            .remote_addr()
            .map(|address| address.to_string())
            .unwrap_or_else(|| "unknown".into());
        let auth = match request.extensions().get::<CallerAuth>() {
            Some(auth) => auth.as_str(),
            None => CallerAuth::None.as_str(),
        };
        let auth = if request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
            if auth == "bearer" {
                "mtls+bearer"
            } else {
                "mtls"
            }
        } else {
            auth
        };
        RequestLog {
            method,
            caller,
            auth,
            started: Instant::now(),
            query_hash: None,
            outcome: None,
        }
    }

    fn finish<T>(mut self, result: &Result<T, Status>) {
        self.set_outcome(match result {
            Ok(_) => "OK".to_string(),
            Err(status) => format!("{:?}", status.code()),
        });
    }

    /// Records the outcome the log line reports when the request ends.
    fn set_outcome(&mut self, outcome: impl Into<String>) {
        self.outcome = Some(outcome.into());
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        tracing::info!(
            target: "auditlens::api::request",
            method = self.method,
            caller = %self.caller,
            auth = self.auth,
            query_hash = self.query_hash.as_deref().unwrap_or("-"),
            outcome = self.outcome.as_deref().unwrap_or("started-stream"),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "gRPC request"
        );
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Status::from),
        Err(error) => Err(Status::internal(format!("worker failed: {error}"))),
    }
}

fn anomaly_query(filter: Option<proto::AnomalyFilter>) -> AnomalyQuery {
    AnomalyQuery {
        filter: filter.unwrap_or_default(),
        ..AnomalyQuery::default()
    }
}

fn rbac_unimplemented(call: &str) -> Status {
    ApiError::Unimplemented(format!(
        "{call} needs the RBAC module (auditlens::rbac), which is not built into this server yet; \
         the message types are final in auditlens.v1"
    ))
    .into()
}

#[tonic::async_trait]
impl AuditLens for AuditLensService {
    type QueryStream = ResponseStream<proto::QueryResponse>;
    type WatchAnomaliesStream = ResponseStream<proto::WatchAnomaliesResponse>;

    async fn query(
        &self,
        request: Request<proto::QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let mut log = RequestLog::start("Query", &request);
        let body = request.into_inner();
        let hash = query_hash(&body.sql);
        log.query_hash = Some(hash.clone());
        if body.sql.trim().is_empty() {
            log.set_outcome("InvalidArgument");
            return Err(Status::invalid_argument("sql is empty"));
        }
        let admission = match self.admission.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let status: Status = QueryError::TooManyQueries {
                    limit: self.admission_limit,
                }
                .into();
                log.set_outcome(format!("{:?}", status.code()));
                return Err(status);
            }
        };
        let running = self.running.clone();
        let runner = self.runner.clone();
        let encoding = match proto::ResultFormat::try_from(body.format) {
            Ok(proto::ResultFormat::JsonRows) => ResultEncoding::JsonRows,
            _ => ResultEncoding::ArrowIpc,
        };
        let query = QueryRequest {
            sql: body.sql,
            parameters: body.parameters.into_iter().collect(),
            encoding,
            max_rows: Some(body.max_rows),
            max_bytes: Some(body.max_bytes),
            timeout: Some(Duration::from_millis(body.timeout_ms)),
            max_chunk_bytes: Some(body.max_chunk_bytes),
        };
        let (sender, receiver) = mpsc::channel::<Result<proto::QueryResponse, Status>>(4);
        tokio::spawn(async move {
            let Ok(running) = running.acquire_owned().await else {
                return;
            };
            let error_sender = sender.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                runner.run(&query, |output| {
                    let part = match output {
                        QueryOutput::Schema { schema, ipc } => Part::Schema(proto::ArrowSchema {
                            ipc,
                            columns: schema
                                .fields()
                                .iter()
                                .map(|field| proto::Column {
                                    name: field.name().clone(),
                                    arrow_type: field.data_type().to_string(),
                                })
                                .collect(),
                        }),
                        QueryOutput::ArrowBatch { ipc, rows } => {
                            Part::Batch(proto::ArrowBatch { ipc, rows })
                        }
                        QueryOutput::JsonRows { rows } => Part::JsonRows(proto::JsonRows { rows }),
                    };
                    sender
                        .blocking_send(Ok(proto::QueryResponse { part: Some(part) }))
                        .map_err(|_| crate::store::query::SinkClosed)
                })
            })
            .await;
            let final_message = match outcome {
                Ok(Ok(outcome)) => {
                    log.set_outcome("OK");
                    Ok(proto::QueryResponse {
                        part: Some(Part::Summary(proto::QuerySummary {
                            rows: outcome.rows,
                            bytes: outcome.bytes,
                            truncated: outcome.truncation.is_some(),
                            truncation: match outcome.truncation {
                                None => proto::Truncation::None as i32,
                                Some(crate::store::query::Truncation::RowLimit(_)) => {
                                    proto::Truncation::RowLimit as i32
                                }
                                Some(crate::store::query::Truncation::ByteLimit(_)) => {
                                    proto::Truncation::ByteLimit as i32
                                }
                            },
                            truncation_reason: outcome
                                .truncation
                                .map(|cut| cut.reason())
                                .unwrap_or_default(),
                            elapsed_ms: outcome.elapsed.as_millis() as u64,
                            query_hash: hash,
                            ipc_end: outcome.ipc_end,
                        })),
                    })
                }
                Ok(Err(error)) => {
                    let status: Status = error.into();
                    log.set_outcome(format!("{:?}", status.code()));
                    Err(status)
                }
                Err(error) => {
                    log.set_outcome("Internal");
                    Err(Status::internal(format!("query worker failed: {error}")))
                }
            };
            // The query's work is over (the DuckDB sandbox is closed): free
            // its slots before the client can see the end of the stream, so
            // a query sent right after that end is admitted.
            drop(running);
            drop(admission);
            let _ = error_sender.send(final_message).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn list_anomalies(
        &self,
        request: Request<proto::ListAnomaliesRequest>,
    ) -> Result<Response<proto::ListAnomaliesResponse>, Status> {
        let log = RequestLog::start("ListAnomalies", &request);
        let result = async {
            let catalog = self.catalog()?;
            let body = request.into_inner();
            let page_size = match body.page_size {
                0 => 100,
                size => size.min(1000),
            };
            let mut query = anomaly_query(body.filter);
            query.limit = page_size;
            if !body.page_token.is_empty() {
                let before = body.page_token.parse::<i64>().map_err(|_| {
                    ApiError::InvalidArgument(format!("bad page_token {:?}", body.page_token))
                })?;
                query.before_seq = Some(before);
            }
            Ok::<_, ApiError>((catalog, query))
        }
        .await;
        let result = match result {
            Err(error) => Err(Status::from(error)),
            Ok((catalog, query)) => {
                let limit = query.limit as usize;
                blocking(move || catalog::list_anomalies(&catalog, &query))
                    .await
                    .map(|anomalies| {
                        let next_page_token = match anomalies.last() {
                            Some(last) if anomalies.len() == limit => last.seq.to_string(),
                            _ => String::new(),
                        };
                        Response::new(proto::ListAnomaliesResponse {
                            anomalies,
                            next_page_token,
                        })
                    })
            }
        };
        log.finish(&result);
        result
    }

    async fn get_incident(
        &self,
        request: Request<proto::GetIncidentRequest>,
    ) -> Result<Response<proto::GetIncidentResponse>, Status> {
        let log = RequestLog::start("GetIncident", &request);
        let id = request.into_inner().id;
        let result = match self.catalog() {
            Err(error) => Err(error.into()),
            Ok(_) if id.is_empty() => Err(Status::invalid_argument("incident id is required")),
            Ok(catalog) => blocking(move || catalog::get_incident(&catalog, &id))
                .await
                .map(Response::new),
        };
        log.finish(&result);
        result
    }

    async fn watch_anomalies(
        &self,
        request: Request<proto::WatchAnomaliesRequest>,
    ) -> Result<Response<Self::WatchAnomaliesStream>, Status> {
        let log = RequestLog::start("WatchAnomalies", &request);
        let catalog = self.catalog().map_err(Status::from)?;
        let body = request.into_inner();
        // Subscribe before reading the starting point, so nothing stored in
        // between is missed (the catalog read below covers it anyway).
        let mut wake_up = self.state.anomalies.subscribe();
        let mut after_seq = if body.after_seq > 0 {
            body.after_seq
        } else {
            let reader = catalog.clone();
            blocking(move || catalog::latest_seq(&reader)).await?
        };
        let filter = body.filter.unwrap_or_default();
        // Validate the filter once up front so a bad one is an error, not an empty stream.
        {
            let reader = catalog.clone();
            let probe = AnomalyQuery {
                filter: filter.clone(),
                after_seq: Some(i64::MAX),
                limit: 1,
                ..AnomalyQuery::default()
            };
            blocking(move || catalog::list_anomalies(&reader, &probe)).await?;
        }
        let poll_interval = self.watch_poll_interval;
        let mut stopping = self.stopping.clone();
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            let _log = log;
            loop {
                let reader = catalog.clone();
                let query = AnomalyQuery {
                    filter: filter.clone(),
                    after_seq: Some(after_seq),
                    limit: 500,
                    ..AnomalyQuery::default()
                };
                let batch = match blocking(move || catalog::list_anomalies(&reader, &query)).await {
                    Ok(batch) => batch,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                let full = batch.len() == 500;
                for anomaly in batch {
                    after_seq = after_seq.max(anomaly.seq);
                    if sender
                        .send(Ok(proto::WatchAnomaliesResponse {
                            anomaly: Some(anomaly),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if full {
                    continue;
                }
                if *stopping.borrow() {
                    return;
                }
                tokio::select! {
                    _ = sender.closed() => return,
                    _ = stopping.changed() => return,
                    _ = wake_up.recv() => {}
                    _ = tokio::time::sleep(poll_interval) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_identity_profile(
        &self,
        request: Request<proto::GetIdentityProfileRequest>,
    ) -> Result<Response<proto::IdentityProfile>, Status> {
        let log = RequestLog::start("GetIdentityProfile", &request);
        let body = request.into_inner();
        let runner = self.runner.clone();
        let result = blocking(move || profile::identity_profile(&runner, &body))
            .await
            .map(Response::new);
        log.finish(&result);
        result
    }

    async fn list_reports(
        &self,
        request: Request<proto::ListReportsRequest>,
    ) -> Result<Response<proto::ListReportsResponse>, Status> {
        let log = RequestLog::start("ListReports", &request);
        let data_dir = self.state.data_dir.clone();
        let result = blocking(move || files::list_reports(&data_dir))
            .await
            .map(|reports| Response::new(proto::ListReportsResponse { reports }));
        log.finish(&result);
        result
    }

    async fn get_report(
        &self,
        request: Request<proto::GetReportRequest>,
    ) -> Result<Response<proto::GetReportResponse>, Status> {
        let log = RequestLog::start("GetReport", &request);
        let body = request.into_inner();
        let data_dir = self.state.data_dir.clone();
        let format = if body.format.is_empty() {
            "json".to_string()
        } else {
            body.format.clone()
        };
        let date = body.date.clone();
        let result = blocking(move || files::read_report(&data_dir, &body.date, &body.format))
            .await
            .map(|content| {
                Response::new(proto::GetReportResponse {
                    date,
                    format,
                    content,
                })
            });
        log.finish(&result);
        result
    }

    async fn train_model(
        &self,
        request: Request<proto::TrainModelRequest>,
    ) -> Result<Response<proto::TrainModelResponse>, Status> {
        let log = RequestLog::start("TrainModel", &request);
        let model = request.into_inner().model;
        let result = match self.state.trainer.clone() {
            None => Err(ApiError::Unimplemented(
                "model training is not wired into this server (it is started by `auditlens serve` with the model \
                 registry)"
                    .into(),
            )
            .into()),
            Some(_) if model.is_empty() => Err(Status::invalid_argument("model name is required")),
            Some(trainer) => blocking(move || trainer.train(&model).map_err(ApiError::InvalidArgument))
                .await
                .map(|model| Response::new(proto::TrainModelResponse { model: Some(model) })),
        };
        log.finish(&result);
        result
    }

    async fn list_models(
        &self,
        request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        let log = RequestLog::start("ListModels", &request);
        let data_dir = self.state.data_dir.clone();
        let result = blocking(move || files::list_models(&data_dir))
            .await
            .map(|models| Response::new(proto::ListModelsResponse { models }));
        log.finish(&result);
        result
    }

    async fn get_ingest_status(
        &self,
        request: Request<proto::GetIngestStatusRequest>,
    ) -> Result<Response<proto::IngestStatus>, Status> {
        let log = RequestLog::start("GetIngestStatus", &request);
        let result = match self.state.ingest_status.read() {
            Err(_) => Err(Status::internal("the ingest status lock is poisoned")),
            Ok(status) => Ok(Response::new(proto::IngestStatus {
                files: status
                    .files
                    .iter()
                    .map(|file| proto::IngestFile {
                        path: file.path.clone(),
                        fingerprint: file.fingerprint.clone(),
                        committed_offset: file.committed_offset,
                        size_bytes: file.size_bytes,
                        lag_bytes: file.lag_bytes(),
                        lag_seconds: file.lag_seconds,
                    })
                    .collect(),
                events_stored: status.events_stored,
                lag_bytes: status.lag_bytes(),
                lag_seconds: status.lag_seconds(),
                quarantined_lines: status.quarantined_lines,
                last_commit: status.last_commit.map(|at| prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: at.timestamp_subsec_nanos() as i32,
                }),
                catalog_ready: *self.state.ready.borrow(),
            })),
        };
        log.finish(&result);
        result
    }

    async fn audit_rbac(
        &self,
        request: Request<proto::AuditRbacRequest>,
    ) -> Result<Response<proto::AuditRbacResponse>, Status> {
        let mut log = RequestLog::start("AuditRbac", &request);
        log.set_outcome("Unimplemented");
        Err(rbac_unimplemented("AuditRbac"))
    }

    async fn who_can(
        &self,
        request: Request<proto::WhoCanRequest>,
    ) -> Result<Response<proto::WhoCanResponse>, Status> {
        let mut log = RequestLog::start("WhoCan", &request);
        log.set_outcome("Unimplemented");
        Err(rbac_unimplemented("WhoCan"))
    }

    async fn recommend_role(
        &self,
        request: Request<proto::RecommendRoleRequest>,
    ) -> Result<Response<proto::RecommendRoleResponse>, Status> {
        let mut log = RequestLog::start("RecommendRole", &request);
        log.set_outcome("Unimplemented");
        Err(rbac_unimplemented("RecommendRole"))
    }

    async fn triage_incident(
        &self,
        request: Request<proto::TriageIncidentRequest>,
    ) -> Result<Response<proto::TriageIncidentResponse>, Status> {
        let log = RequestLog::start("TriageIncident", &request);
        let body = request.into_inner();
        let result = match (
            self.catalog(),
            crate::feedback::api::verdict_from_request(&body),
        ) {
            (Err(error), _) => Err(error.into()),
            (_, Err(error)) => Err(ApiError::from(error).into()),
            (Ok(catalog), Ok(verdict)) => {
                let context = self.state.feedback.clone();
                blocking(move || crate::feedback::api::triage(&catalog, &verdict, &context))
                    .await
                    .map(Response::new)
            }
        };
        log.finish(&result);
        result
    }
}
