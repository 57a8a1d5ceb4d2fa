//! The sandboxed query runner: the one way untrusted SQL (the gRPC `Query`
//! call, the canned investigations) reaches the stored events.
//!
//! Two locks, in this order, and neither is enough alone:
//!
//! 1. **The statement check, done by DuckDB itself.** Each query gets a fresh
//!    in-memory database. The text is split with `duckdb_extract_statements`
//!    (more than one statement is refused: `duckdb-rs` would *execute* every
//!    statement but the last while preparing). DuckDB's parser then says
//!    whether it is a SELECT (`json_serialize_sql` serializes SELECTs only
//!    and binds nothing), and the prepared statement's
//!    `duckdb_prepared_statement_type` must say `SELECT` too (which also
//!    covers `FROM x`, `DESCRIBE`, `SHOW`, `SUMMARIZE`). Everything else
//!    (COPY, EXPORT, ATTACH, DETACH, INSTALL, LOAD, SET, RESET, PRAGMA, CALL,
//!    DDL, DML, EXPLAIN, whose ANALYZE form executes its statement) is
//!    refused by name. No keyword matching on our side decides anything:
//!    what DuckDB parses is what we judge.
//! 2. **The sandbox.** Before the statement is even prepared the database is
//!    locked: `allowed_directories` = the events folder, then
//!    `enable_external_access = false`, no extension auto-loading or
//!    installing, no spilling to a temp folder, a memory limit and a thread
//!    count, then `lock_configuration = true`. Preparing binds table functions,
//!    and some read files while binding (`read_csv` sniffs), so the sandbox is
//!    in force before DuckDB sees the text; a file outside the events folder is
//!    a DuckDB "Permission Error", reported as [`QueryError::Refused`]. The
//!    sandbox alone would still allow `COPY ... TO` into the events folder,
//!    hence the statement check.
//!
//! Results stream as Arrow IPC (or JSON rows) chunks of bounded size; the row,
//! byte and time limits cut the result and say so. A watchdog thread
//! interrupts DuckDB when the time limit passes.

use super::statement_guard::{TreeVerdict, judge_parse_tree};
use super::views::{events_dir, install_views, retry_while_parts_vanish, sql_string_literal};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use duckdb::ffi;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why a query did not run or did not finish. The gRPC layer maps each
/// variant to one status code (`src/api/errors.rs`).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A statement or file access the sandbox does not allow.
    #[error("refused: {what}: {reason}")]
    Refused { what: String, reason: String },
    /// SQL DuckDB could not parse or bind, or a parameter problem.
    #[error("{0}")]
    Invalid(String),
    /// The time limit passed; DuckDB was interrupted.
    #[error("query exceeded its time limit of {} ms", .limit.as_millis())]
    TimedOut { limit: Duration },
    /// Too many queries are running or waiting.
    #[error("too many concurrent queries (limit {limit}); retry later")]
    TooManyQueries { limit: usize },
    /// DuckDB ran out of its memory limit.
    #[error("query exceeded the memory limit: {0}")]
    OutOfMemory(String),
    /// The receiver of the results went away.
    #[error("query cancelled by the client")]
    Cancelled,
    /// Anything else (opening DuckDB, encoding Arrow).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// The limits every query runs under. A request may ask for less, never more.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
    pub timeout: Duration,
    /// DuckDB `memory_limit`, e.g. "1GB".
    pub memory_limit: String,
    /// DuckDB worker threads per query.
    pub threads: u32,
    /// Default largest payload of one streamed message.
    pub max_chunk_bytes: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_rows: 1_000_000,
            max_bytes: 256 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            memory_limit: "1GB".to_string(),
            threads: 2,
            max_chunk_bytes: 1024 * 1024,
        }
    }
}

/// How results are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultEncoding {
    #[default]
    ArrowIpc,
    JsonRows,
}

/// One query to run.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    pub sql: String,
    /// `$name` in the SQL is bound to `parameters["name"]` by DuckDB.
    pub parameters: BTreeMap<String, String>,
    pub encoding: ResultEncoding,
    pub max_rows: Option<u64>,
    pub max_bytes: Option<u64>,
    pub timeout: Option<Duration>,
    pub max_chunk_bytes: Option<u64>,
}

/// One piece of a streamed result.
#[derive(Debug, Clone)]
pub enum QueryOutput {
    /// First: the Arrow schema, and its IPC stream header.
    Schema { schema: SchemaRef, ipc: Vec<u8> },
    /// An Arrow IPC record batch message (`ResultEncoding::ArrowIpc`).
    ArrowBatch { ipc: Vec<u8>, rows: u64 },
    /// Rows as JSON objects (`ResultEncoding::JsonRows`).
    JsonRows { rows: Vec<String> },
}

/// Why a result was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    RowLimit(u64),
    ByteLimit(u64),
}

impl Truncation {
    pub fn reason(&self) -> String {
        match self {
            Truncation::RowLimit(limit) => format!("row limit {limit} reached"),
            Truncation::ByteLimit(limit) => format!("byte limit {limit} reached"),
        }
    }
}

/// How a completed query went.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    pub rows: u64,
    pub bytes: u64,
    pub truncation: Option<Truncation>,
    pub elapsed: Duration,
    /// The Arrow IPC end-of-stream marker (empty for JSON rows).
    pub ipc_end: Vec<u8>,
}

/// The receiver of results went away; stop the query.
#[derive(Debug)]
pub struct SinkClosed;

/// Runs untrusted read-only SQL over one data folder.
#[derive(Debug, Clone)]
pub struct QueryRunner {
    data_dir: PathBuf,
    limits: QueryLimits,
}

/// xxh3-64 of a statement, hex: logged and returned so a log line and a
/// client's result can be matched without logging the SQL itself.
pub fn query_hash(sql: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(sql.as_bytes()))
}

impl QueryRunner {
    /// The data folder is canonicalised so `allowed_directories` compares
    /// against the same spelling DuckDB resolves paths to.
    pub fn new(data_dir: &Path, limits: QueryLimits) -> Result<Self> {
        let data_dir = data_dir.canonicalize().map_err(|error| {
            QueryError::Internal(format!("data folder {}: {error}", data_dir.display()))
        })?;
        Ok(QueryRunner { data_dir, limits })
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs one statement, handing each piece of the result to `sink` in
    /// order. Blocking: call from a blocking thread.
    pub fn run(
        &self,
        request: &QueryRequest,
        mut sink: impl FnMut(QueryOutput) -> Result<(), SinkClosed>,
    ) -> Result<QueryOutcome> {
        let started = Instant::now();
        let max_rows = clamp(request.max_rows, self.limits.max_rows);
        let max_bytes = clamp(request.max_bytes, self.limits.max_bytes);
        let max_chunk_bytes = clamp(request.max_chunk_bytes, self.limits.max_chunk_bytes).max(1024);
        let timeout = match request.timeout {
            Some(asked) if !asked.is_zero() => asked.min(self.limits.timeout),
            _ => self.limits.timeout,
        };

        // Compaction and retention delete parts; a statement that listed the
        // events folder just before may then fail to open one. It is run
        // again over the folder as it is now (`retry_while_parts_vanish`), but
        // only while nothing but the schema has reached the client, and
        // without sending the schema twice.
        let schema_sent = Cell::new(false);
        let rows_streamed = Cell::new(false);
        let result = retry_while_parts_vanish(
            || {
                // Every attempt shares the one time limit.
                let remaining = timeout.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    return Err(QueryError::TimedOut { limit: timeout });
                }
                let mut guarded_sink = |output: QueryOutput| match output {
                    QueryOutput::Schema { .. } if schema_sent.get() => Ok(()),
                    QueryOutput::Schema { .. } => {
                        schema_sent.set(true);
                        sink(output)
                    }
                    other => {
                        rows_streamed.set(true);
                        sink(other)
                    }
                };
                self.run_once(
                    request,
                    remaining,
                    &mut guarded_sink,
                    Limits {
                        max_rows,
                        max_bytes,
                        max_chunk_bytes,
                    },
                )
            },
            || !rows_streamed.get(),
        );
        match result {
            // Reported with the whole limit, not what was left of it.
            Err(QueryError::TimedOut { .. }) => Err(QueryError::TimedOut { limit: timeout }),
            Err(error) => Err(error),
            Ok(mut outcome) => {
                outcome.elapsed = started.elapsed();
                Ok(outcome)
            }
        }
    }

    fn run_once(
        &self,
        request: &QueryRequest,
        timeout: Duration,
        sink: &mut impl FnMut(QueryOutput) -> Result<(), SinkClosed>,
        limits: Limits,
    ) -> Result<QueryOutcome> {
        let sandbox = Sandbox::open(&self.data_dir, &self.limits)?;
        sandbox.check_statement(&request.sql)?;

        let watchdog = Watchdog::start(sandbox.connection()?.interrupt_handle(), timeout);
        let result = stream_results(
            sandbox.connection()?,
            request,
            limits,
            &watchdog.fired,
            sink,
        );
        let timed_out = watchdog.stop();
        match result {
            Err(_) | Ok(_) if timed_out => Err(QueryError::TimedOut { limit: timeout }),
            other => other,
        }
    }
}

fn clamp(asked: Option<u64>, limit: u64) -> u64 {
    match asked {
        Some(asked) if asked > 0 => asked.min(limit),
        _ => limit,
    }
}

struct Limits {
    max_rows: u64,
    max_bytes: u64,
    max_chunk_bytes: u64,
}

/// Prepares the checked statement on the high-level connection and streams it.
fn stream_results(
    connection: &duckdb::Connection,
    request: &QueryRequest,
    limits: Limits,
    timed_out: &AtomicBool,
    sink: &mut impl FnMut(QueryOutput) -> Result<(), SinkClosed>,
) -> Result<QueryOutcome> {
    // Safe to use `prepare` now: the check proved the text is one statement,
    // so duckdb-rs has no earlier statements to execute.
    let mut statement = connection
        .prepare(&request.sql)
        .map_err(classify_duckdb_error)?;
    let mut values = Vec::with_capacity(statement.parameter_count());
    for index in 1..=statement.parameter_count() {
        let name = statement
            .parameter_name(index)
            .map_err(classify_duckdb_error)?;
        match request.parameters.get(&name) {
            Some(value) => values.push(value.clone()),
            None => {
                return Err(QueryError::Invalid(format!(
                    "missing value for parameter ${name}"
                )));
            }
        }
    }
    let mut stream = statement
        .stream_arrow(duckdb::params_from_iter(values))
        .map_err(classify_duckdb_error)?;
    let schema = stream.get_schema();

    let mut writer = StreamWriter::try_new(Vec::new(), &schema)
        .map_err(|error| QueryError::Internal(format!("encoding the Arrow schema: {error}")))?;
    let header = std::mem::take(writer.get_mut());
    sink(QueryOutput::Schema {
        schema: schema.clone(),
        ipc: header,
    })
    .map_err(|_| QueryError::Cancelled)?;

    let mut rows_sent: u64 = 0;
    let mut bytes_sent: u64 = 0;
    let mut truncation = None;
    let mut encoded_bytes_per_row: u64 = 1;
    'batches: for batch in stream.by_ref() {
        if timed_out.load(Ordering::SeqCst) {
            return Err(QueryError::Internal("interrupted".into()));
        }
        let batch = batch.map_err(classify_duckdb_error)?;
        let mut offset = 0usize;
        let total_rows = batch.num_rows();
        let bytes_per_row = (batch.get_array_memory_size() / total_rows.max(1)).max(1) as u64;
        while offset < total_rows {
            // Chunks hold what fits in the chunk size and in what is left of
            // the byte budget, estimated from the batch's in-memory size and
            // corrected by the encoded size of earlier chunks.
            let budget = limits
                .max_chunk_bytes
                .min(limits.max_bytes.saturating_sub(bytes_sent))
                .max(1);
            let per_row = bytes_per_row.max(encoded_bytes_per_row);
            let rows_per_chunk = (budget / per_row).max(1) as usize;
            if rows_sent >= limits.max_rows {
                truncation = Some(Truncation::RowLimit(limits.max_rows));
                break 'batches;
            }
            let remaining_allowed = (limits.max_rows - rows_sent) as usize;
            let length = rows_per_chunk
                .min(total_rows - offset)
                .min(remaining_allowed);
            let chunk = batch.slice(offset, length);
            let (output, size) = encode_chunk(&mut writer, &chunk, request.encoding)?;
            if bytes_sent + size > limits.max_bytes {
                truncation = Some(Truncation::ByteLimit(limits.max_bytes));
                break 'batches;
            }
            encoded_bytes_per_row = encoded_bytes_per_row.max(size / length.max(1) as u64);
            sink(output).map_err(|_| QueryError::Cancelled)?;
            rows_sent += length as u64;
            bytes_sent += size;
            offset += length;
        }
    }
    // A result exactly at the row limit is complete only if nothing follows.
    if truncation.is_none() && rows_sent >= limits.max_rows && stream.next().is_some() {
        truncation = Some(Truncation::RowLimit(limits.max_rows));
    }
    writer
        .finish()
        .map_err(|error| QueryError::Internal(format!("finishing the Arrow stream: {error}")))?;
    let ipc_end = match request.encoding {
        ResultEncoding::ArrowIpc => std::mem::take(writer.get_mut()),
        ResultEncoding::JsonRows => Vec::new(),
    };
    Ok(QueryOutcome {
        rows: rows_sent,
        bytes: bytes_sent,
        truncation,
        elapsed: Duration::ZERO,
        ipc_end,
    })
}

fn encode_chunk(
    writer: &mut StreamWriter<Vec<u8>>,
    chunk: &RecordBatch,
    encoding: ResultEncoding,
) -> Result<(QueryOutput, u64)> {
    match encoding {
        ResultEncoding::ArrowIpc => {
            writer.write(chunk).map_err(|error| {
                QueryError::Internal(format!("encoding an Arrow batch: {error}"))
            })?;
            let ipc = std::mem::take(writer.get_mut());
            let size = ipc.len() as u64;
            Ok((
                QueryOutput::ArrowBatch {
                    ipc,
                    rows: chunk.num_rows() as u64,
                },
                size,
            ))
        }
        ResultEncoding::JsonRows => {
            let mut buffer = Vec::new();
            {
                let mut json = arrow::json::LineDelimitedWriter::new(&mut buffer);
                json.write(chunk).map_err(|error| {
                    QueryError::Internal(format!("encoding JSON rows: {error}"))
                })?;
                json.finish().map_err(|error| {
                    QueryError::Internal(format!("encoding JSON rows: {error}"))
                })?;
            }
            let size = buffer.len() as u64;
            let text = String::from_utf8(buffer).map_err(|error| {
                QueryError::Internal(format!("JSON rows are not UTF-8: {error}"))
            })?;
            let rows = text.lines().map(str::to_string).collect();
            Ok((QueryOutput::JsonRows { rows }, size))
        }
    }
}

/// How often the watchdog repeats its interrupt once the time limit passed.
const REINTERRUPT_INTERVAL: Duration = Duration::from_millis(20);

/// Interrupts DuckDB from another thread when the time limit passes.
struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(interrupt: Arc<duckdb::InterruptHandle>, timeout: Duration) -> Watchdog {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::Builder::new()
            .name("query-watchdog".into())
            .spawn(move || {
                // Disconnected (the query ended) wakes us early; only a
                // timeout interrupts.
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    finished.recv_timeout(timeout)
                {
                    flag.store(true, Ordering::SeqCst);
                    // DuckDB clears a pending interrupt whenever a statement
                    // or transaction begins, so one sent while the statement
                    // was still being prepared, or between preparing and
                    // executing, would be lost and the query would run
                    // unbounded. Keep interrupting until the query ends.
                    loop {
                        interrupt.interrupt();
                        match finished.recv_timeout(REINTERRUPT_INTERVAL) {
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                            _ => break,
                        }
                    }
                }
            })
            .ok();
        Watchdog {
            done: Some(done),
            fired,
            thread,
        }
    }

    /// Stops the watchdog; returns whether it fired.
    fn stop(mut self) -> bool {
        self.done.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

/// A fresh in-memory DuckDB, locked down, with the shared views.
///
/// Opened through the C API so the statement check can use a raw connection
/// (`duckdb-rs` exposes no statement type), then wrapped in a `duckdb-rs`
/// connection for streaming Arrow. Drop order: the wrapper, the raw
/// connection, the database.
struct Sandbox {
    connection: Option<duckdb::Connection>,
    raw_connection: ffi::duckdb_connection,
    database: ffi::duckdb_database,
}

impl Sandbox {
    fn open(data_dir: &Path, limits: &QueryLimits) -> Result<Sandbox> {
        let mut database: ffi::duckdb_database = std::ptr::null_mut();
        // SAFETY: a null path opens an in-memory database; `database` is an
        // out-pointer we own and close in Drop.
        let state = unsafe { ffi::duckdb_open(std::ptr::null(), &mut database) };
        if state != ffi::DuckDBSuccess {
            return Err(QueryError::Internal(
                "could not open an in-memory DuckDB".into(),
            ));
        }
        let mut sandbox = Sandbox {
            connection: None,
            raw_connection: std::ptr::null_mut(),
            database,
        };
        // SAFETY: `database` is open; the wrapper does not close it
        // (open_from_raw leaves closing to us).
        let connection = unsafe { duckdb::Connection::open_from_raw(database) }
            .map_err(|error| QueryError::Internal(format!("connecting to DuckDB: {error}")))?;
        let events = events_dir(data_dir);
        let mut allowed = events.to_string_lossy().to_string();
        if !allowed.ends_with('/') {
            allowed.push('/');
        }
        install_views(&connection, data_dir)
            .map_err(|error| QueryError::Internal(error.to_string()))?;
        let lock_down = format!(
            "SET autoinstall_known_extensions = false;
             SET autoload_known_extensions = false;
             SET allow_community_extensions = false;
             SET temp_directory = '';
             SET memory_limit = {memory};
             SET threads = {threads};
             SET allowed_directories = [{allowed}];
             SET enable_external_access = false;
             SET lock_configuration = true;",
            memory = sql_string_literal(&limits.memory_limit),
            threads = limits.threads.max(1),
            allowed = sql_string_literal(&allowed),
        );
        connection
            .execute_batch(&lock_down)
            .map_err(|error| QueryError::Internal(format!("locking the query sandbox: {error}")))?;
        sandbox.connection = Some(connection);
        let mut raw_connection: ffi::duckdb_connection = std::ptr::null_mut();
        // SAFETY: `database` is open; the connection is disconnected in Drop.
        let state = unsafe { ffi::duckdb_connect(database, &mut raw_connection) };
        sandbox.raw_connection = raw_connection;
        if state != ffi::DuckDBSuccess {
            return Err(QueryError::Internal(
                "could not connect to the sandbox DuckDB".into(),
            ));
        }
        Ok(sandbox)
    }

    fn connection(&self) -> Result<&duckdb::Connection> {
        self.connection
            .as_ref()
            .ok_or_else(|| QueryError::Internal("sandbox connection is closed".into()))
    }

    /// Parses and prepares `sql` through DuckDB; accepts exactly one
    /// SELECT-type statement.
    fn check_statement(&self, sql: &str) -> Result<()> {
        let text = CString::new(sql)
            .map_err(|_| QueryError::Invalid("the statement contains a NUL character".into()))?;
        let mut extracted: ffi::duckdb_extracted_statements = std::ptr::null_mut();
        // SAFETY: the raw connection is open for the sandbox's lifetime;
        // `extracted` is destroyed by the guard even when extraction failed.
        let count = unsafe {
            ffi::duckdb_extract_statements(self.raw_connection, text.as_ptr(), &mut extracted)
        };
        let extracted = ExtractedGuard(extracted);
        if count == 0 {
            // SAFETY: the error string belongs to `extracted`, copied before it is freed.
            let message = unsafe { c_text(ffi::duckdb_extract_statements_error(extracted.0)) };
            return Err(QueryError::Invalid(
                message.unwrap_or_else(|| "empty statement: nothing to run".into()),
            ));
        }
        if count > 1 {
            return Err(QueryError::Refused {
                what: "multiple statements".into(),
                reason: format!("the request holds {count} statements; send exactly one"),
            });
        }
        // DuckDB's parser decides whether this is a SELECT, before anything is
        // bound: json_serialize_sql serializes SELECT statements only.
        // A statement that is not a plain SELECT is refused before it is
        // prepared: preparing binds, and nothing but a SELECT needs binding here.
        self.check_parse_tree(sql)?;

        let mut prepared: ffi::duckdb_prepared_statement = std::ptr::null_mut();
        // SAFETY: index 0 exists (count == 1); the guard destroys `prepared`.
        let state = unsafe {
            ffi::duckdb_prepare_extracted_statement(
                self.raw_connection,
                extracted.0,
                0,
                &mut prepared,
            )
        };
        let prepared = PreparedGuard(prepared);
        if state != ffi::DuckDBSuccess {
            // SAFETY: the error string belongs to `prepared`.
            let message = unsafe { c_text(ffi::duckdb_prepare_error(prepared.0)) }
                .unwrap_or_else(|| "the statement could not be prepared".into());
            return Err(classify_message(message));
        }
        // SAFETY: `prepared` is a successfully prepared statement.
        let statement_type = unsafe { ffi::duckdb_prepared_statement_type(prepared.0) };
        if statement_type == ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT {
            return Ok(());
        }
        let what = statement_type_name(statement_type).to_string();
        let reason = match statement_type {
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => {
                "EXPLAIN ANALYZE executes its statement; only SELECT statements run here"
                    .to_string()
            }
            _ => format!("{what} statements are not allowed: the query endpoint is read-only"),
        };
        Err(QueryError::Refused { what, reason })
    }

    /// Asks DuckDB's parser, through `json_serialize_sql` (which binds
    /// nothing), what the statement is. Only SELECT statements serialize;
    /// and a SELECT may still carry a data-modifying WITH clause
    /// (`WITH x AS (INSERT ... RETURNING *) SELECT ...`, whose prepared type
    /// is SELECT), so every query node in the tree must be a read.
    fn check_parse_tree(&self, sql: &str) -> Result<()> {
        let connection = self.connection()?;
        let serialized: String = connection
            .query_row(
                "SELECT json_serialize_sql(CAST($1 AS VARCHAR))",
                [sql],
                |row| row.get(0),
            )
            .map_err(|error| {
                QueryError::Internal(format!(
                    "DuckDB's parser could not check the statement: {error}"
                ))
            })?;
        match judge_parse_tree(sql, &serialized) {
            TreeVerdict::Read => Ok(()),
            TreeVerdict::Refused { what, reason } => Err(QueryError::Refused { what, reason }),
            TreeVerdict::Invalid(message) => Err(QueryError::Invalid(message)),
            TreeVerdict::Unreadable(message) => Err(QueryError::Internal(message)),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.connection.take();
        // SAFETY: both handles were opened by Sandbox::open and are released once.
        unsafe {
            if !self.raw_connection.is_null() {
                ffi::duckdb_disconnect(&mut self.raw_connection);
            }
            if !self.database.is_null() {
                ffi::duckdb_close(&mut self.database);
            }
        }
    }
}

struct ExtractedGuard(ffi::duckdb_extracted_statements);

impl Drop for ExtractedGuard {
    fn drop(&mut self) {
        // SAFETY: DuckDB requires destroying extracted statements even when
        // extraction failed; destroying null is a no-op.
        unsafe { ffi::duckdb_destroy_extracted(&mut self.0) };
    }
}

struct PreparedGuard(ffi::duckdb_prepared_statement);

impl Drop for PreparedGuard {
    fn drop(&mut self) {
        // SAFETY: DuckDB requires destroying a prepared statement even when
        // preparing failed; destroying null is a no-op.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.0) };
    }
}

/// Copies a C string owned by DuckDB.
///
/// # Safety
/// `text` must be null or a valid NUL-terminated string.
unsafe fn c_text(text: *const std::os::raw::c_char) -> Option<String> {
    if text.is_null() {
        None
    } else {
        // SAFETY: guaranteed by the caller.
        Some(
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The SQL keyword(s) of a DuckDB statement type, for refusal messages.
pub fn statement_type_name(statement_type: ffi::duckdb_statement_type) -> &'static str {
    match statement_type {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => "SELECT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => "INSERT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => "UPDATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => "EXPLAIN",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => "DELETE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE => "PREPARE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE => "CREATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => "EXECUTE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => "ALTER",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => {
            "transaction control (BEGIN/COMMIT/ROLLBACK)"
        }
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => "COPY",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE => "ANALYZE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => "SET VARIABLE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => "CREATE FUNCTION/MACRO",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => "DROP",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => "EXPORT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => "PRAGMA",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM => "VACUUM",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => "CALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => "SET/RESET",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => "INSTALL/LOAD",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION => "relation",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION => "extension statement",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN => "logical plan",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => "ATTACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => "DETACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI => "multiple statements",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => "COPY FROM DATABASE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS => "UPDATE EXTENSIONS",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => "MERGE INTO",
        _ => "unknown statement type",
    }
}

/// Sorts a DuckDB error message into the query error it means.
fn classify_message(message: String) -> QueryError {
    if message.starts_with("Permission Error") {
        QueryError::Refused {
            what: "file access outside the events folder".into(),
            reason: message,
        }
    } else if message.starts_with("Out of Memory Error") {
        QueryError::OutOfMemory(message)
    } else if message.starts_with("INTERRUPT Error") || message.contains("Interrupted") {
        QueryError::Internal(message)
    } else if message.starts_with("Parser Error")
        || message.starts_with("Binder Error")
        || message.starts_with("Catalog Error")
        || message.starts_with("Conversion Error")
        || message.starts_with("Invalid Input Error")
        || message.starts_with("Not implemented Error")
        || message.starts_with("Constraint Error")
        || message.starts_with("Out of Range Error")
        || message.starts_with("Invalid Error")
        || message.starts_with("Syntax Error")
    {
        QueryError::Invalid(message)
    } else {
        // IO errors, internal errors: still the statement's doing most often,
        // but say it as DuckDB said it.
        QueryError::Invalid(message)
    }
}

fn classify_duckdb_error(error: duckdb::Error) -> QueryError {
    match error {
        duckdb::Error::DuckDBFailure(_, Some(message)) => classify_message(message),
        other => QueryError::Invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_folder() -> tempfile::TempDir {
        let folder = tempfile::tempdir().expect("temp dir");
        let part = folder
            .path()
            .join("events/cluster=default/date=2026-11-27/hour=09");
        std::fs::create_dir_all(&part).expect("mkdir");
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let columns: Vec<String> = super::super::schema::duckdb_column_types()
            .into_iter()
            .map(|(name, sql_type)| match name {
                "ts" | "stage_ts" => {
                    format!("TIMESTAMP '2026-11-27 09:00:00' + INTERVAL (i) SECOND AS {name}")
                }
                "audit_id" => format!("'id-' || i AS {name}"),
                "stage" => format!("'ResponseComplete' AS {name}"),
                "verb" => format!("CASE WHEN i % 2 = 0 THEN 'get' ELSE 'list' END AS {name}"),
                "username" => format!("'alice' AS {name}"),
                "source_offset" => format!("i AS {name}"),
                _ => format!("CAST(NULL AS {sql_type}) AS {name}"),
            })
            .collect();
        let copy = format!(
            "COPY (SELECT {} FROM range(5000) t(i)) TO '{}' (FORMAT parquet)",
            columns.join(", "),
            part.join("part-a.parquet").display()
        );
        connection.execute_batch(&copy).expect("write parquet");
        folder
    }

    fn run(
        runner: &QueryRunner,
        request: QueryRequest,
    ) -> (Result<QueryOutcome>, Vec<QueryOutput>) {
        let mut outputs = Vec::new();
        let result = runner.run(&request, |output| {
            outputs.push(output);
            Ok(())
        });
        (result, outputs)
    }

    fn sql(text: &str) -> QueryRequest {
        QueryRequest {
            sql: text.into(),
            ..QueryRequest::default()
        }
    }

    #[test]
    fn reads_events_and_streams_schema_first() {
        let folder = data_folder();
        let runner = QueryRunner::new(folder.path(), QueryLimits::default()).expect("runner");
        let (result, outputs) = run(
            &runner,
            sql("SELECT verb, count(*) AS n FROM events GROUP BY verb ORDER BY verb"),
        );
        let outcome = result.expect("query runs");
        assert_eq!(outcome.rows, 2);
        assert!(outcome.truncation.is_none());
        assert!(matches!(outputs[0], QueryOutput::Schema { .. }));
        let mut stream = Vec::new();
        for output in &outputs {
            match output {
                QueryOutput::Schema { ipc, .. } | QueryOutput::ArrowBatch { ipc, .. } => {
                    stream.extend(ipc)
                }
                QueryOutput::JsonRows { .. } => panic!("arrow requested"),
            }
        }
        stream.extend(&outcome.ipc_end);
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None)
            .expect("ipc");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn refuses_writes_by_statement_type() {
        let folder = data_folder();
        let runner = QueryRunner::new(folder.path(), QueryLimits::default()).expect("runner");
        for (statement, named) in [
            ("COPY (SELECT 1) TO 'x.csv'", "COPY"),
            ("CREATE TABLE t AS SELECT 1", "CREATE"),
            ("ATTACH ':memory:' AS other", "ATTACH"),
            ("SET threads = 1", "SET"),
            ("SELECT 1; SELECT 2", "multiple statements"),
        ] {
            let (result, _) = run(&runner, sql(statement));
            match result {
                Err(QueryError::Refused { what, .. }) => {
                    assert!(what.contains(named), "{statement}: {what}")
                }
                other => panic!("{statement} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_files_outside_the_events_folder() {
        let folder = data_folder();
        let runner = QueryRunner::new(folder.path(), QueryLimits::default()).expect("runner");
        let (result, _) = run(&runner, sql("SELECT * FROM read_text('/etc/passwd')"));
        assert!(
            matches!(result, Err(QueryError::Refused { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn binds_named_parameters_and_cuts_at_the_row_limit() {
        let folder = data_folder();
        let runner = QueryRunner::new(folder.path(), QueryLimits::default()).expect("runner");
        let mut request = sql("SELECT audit_id FROM events WHERE verb = $verb ORDER BY ts");
        request.parameters.insert("verb".into(), "get".into());
        request.max_rows = Some(100);
        request.encoding = ResultEncoding::JsonRows;
        let (result, outputs) = run(&runner, request);
        let outcome = result.expect("runs");
        assert_eq!(outcome.rows, 100);
        assert_eq!(outcome.truncation, Some(Truncation::RowLimit(100)));
        let rows: usize = outputs
            .iter()
            .map(|output| match output {
                QueryOutput::JsonRows { rows } => rows.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(rows, 100);

        let (missing, _) = run(&runner, sql("SELECT * FROM events WHERE verb = $verb"));
        assert!(matches!(missing, Err(QueryError::Invalid(_))));
    }

    #[test]
    fn interrupts_at_the_time_limit() {
        let folder = data_folder();
        let limits = QueryLimits {
            timeout: Duration::from_millis(300),
            ..QueryLimits::default()
        };
        let runner = QueryRunner::new(folder.path(), limits).expect("runner");
        let (result, _) = run(
            &runner,
            sql("SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000) b"),
        );
        assert!(
            matches!(result, Err(QueryError::TimedOut { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn the_watchdog_interrupts_a_statement_that_starts_after_it_fired() {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let watchdog = Watchdog::start(connection.interrupt_handle(), Duration::from_millis(1));
        while !watchdog.fired.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // DuckDB clears a pending interrupt when a statement begins; the
        // time limit passed before this one started and must still end it.
        let result: duckdb::Result<String> = connection.query_row(
            "SELECT CAST(sum(a.range * b.range) AS VARCHAR) FROM range(10000000) a, range(1000) b",
            [],
            |row| row.get(0),
        );
        assert!(watchdog.stop());
        let error = classify_duckdb_error(result.expect_err("the statement is interrupted"));
        assert!(
            matches!(error, QueryError::Internal(_)),
            "not an interrupt: {error:?}"
        );
    }
}
