//! The gRPC client the CLI commands use: connecting (plain, TLS, mutual TLS,
//! bearer token) and collecting a streamed query result.
//!
//! A query result is reassembled exactly as any other client would do it:
//! concatenate the `ipc` bytes of the schema and batch messages plus the
//! summary's end marker, and read that as one Arrow IPC stream.

use super::ApiError;
use super::auth::BearerToken;
use super::proto::audit_lens_client::AuditLensClient;
use super::proto::{self, query_response::Part};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use clap::Args;
use std::path::PathBuf;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Where the server is and how to prove who we are.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// The auditlens gRPC server (https:// for TLS).
    #[arg(
        long,
        env = "AUDITLENS_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// A file holding the bearer token (else AUDITLENS_API_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate that signed the server's certificate.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The name to verify in the server's certificate (default: the URL's host).
    #[arg(long)]
    pub tls_domain: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            server: "http://127.0.0.1:50051".into(),
            token_file: None,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            tls_domain: None,
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub struct TokenInjector(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for TokenInjector {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Client = AuditLensClient<InterceptedService<Channel, TokenInjector>>;

fn read(path: &PathBuf) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|source| ApiError::Io {
        path: path.clone(),
        source,
    })
}

/// Opens a channel to the server (shared by the AuditLens, health and
/// reflection clients).
pub async fn channel(options: &ClientOptions) -> Result<Channel, ApiError> {
    let connect_error = |message: String| ApiError::Connect {
        server: options.server.clone(),
        message,
    };
    let mut endpoint = Endpoint::from_shared(options.server.clone())
        .map_err(|error| connect_error(error.to_string()))?;
    let wants_tls = options.server.starts_with("https://") || options.ca_cert.is_some();
    if wants_tls {
        let mut tls = ClientTlsConfig::new();
        match &options.ca_cert {
            Some(path) => tls = tls.ca_certificate(Certificate::from_pem(read(path)?)),
            None => {
                return Err(ApiError::Config(
                    "an https:// server needs --ca-cert (the CA that signed the server certificate)".into(),
                ));
            }
        }
        if let (Some(cert), Some(key)) = (&options.client_cert, &options.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &options.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|error| connect_error(error.to_string()))?;
    }
    endpoint.connect().await.map_err(|error| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        connect_error(message)
    })
}

/// The token injector for these options.
pub fn token_injector(options: &ClientOptions) -> Result<TokenInjector, ApiError> {
    let token = BearerToken::from_file_or_env(options.token_file.as_deref())?;
    let value = match token {
        Some(token) => Some(
            token
                .header_value()
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| ApiError::Config("the token is not valid header text".into()))?,
        ),
        None => None,
    };
    Ok(TokenInjector(value))
}

/// Connects the AuditLens client.
pub async fn connect(options: &ClientOptions) -> Result<Client, ApiError> {
    let channel = channel(options).await?;
    Ok(
        AuditLensClient::with_interceptor(channel, token_injector(options)?)
            .max_decoding_message_size(64 * 1024 * 1024),
    )
}

/// A whole query result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: Option<SchemaRef>,
    pub batches: Vec<RecordBatch>,
    pub json_rows: Vec<String>,
    /// The raw Arrow IPC stream (schema, batches, end marker).
    pub ipc_stream: Vec<u8>,
    pub summary: proto::QuerySummary,
}

/// Runs a query and collects the stream.
pub async fn run_query(
    client: &mut Client,
    request: proto::QueryRequest,
) -> Result<QueryResult, ApiError> {
    let json = request.format == proto::ResultFormat::JsonRows as i32;
    let mut stream = client.query(request).await?.into_inner();
    let mut ipc_stream = Vec::new();
    let mut json_rows = Vec::new();
    let mut summary = None;
    while let Some(message) = stream.message().await? {
        match message.part {
            Some(Part::Schema(schema)) => ipc_stream.extend_from_slice(&schema.ipc),
            Some(Part::Batch(batch)) => ipc_stream.extend_from_slice(&batch.ipc),
            Some(Part::JsonRows(rows)) => json_rows.extend(rows.rows),
            Some(Part::Summary(last)) => {
                ipc_stream.extend_from_slice(&last.ipc_end);
                summary = Some(last);
            }
            None => {}
        }
    }
    let summary = summary
        .ok_or_else(|| ApiError::Client("the result stream ended without a summary".into()))?;
    let (schema, batches) = if ipc_stream.is_empty() {
        (None, Vec::new())
    } else {
        let bytes = if json {
            // Only the schema came as IPC: close the stream for the reader.
            let mut closed = ipc_stream.clone();
            closed.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
            closed
        } else {
            ipc_stream.clone()
        };
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|error| {
            ApiError::Client(format!("reading the Arrow IPC stream: {error}"))
        })?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ApiError::Client(format!("reading Arrow batches: {error}")))?;
        (Some(schema), batches)
    };
    Ok(QueryResult {
        schema,
        batches,
        json_rows,
        ipc_stream,
        summary,
    })
}
