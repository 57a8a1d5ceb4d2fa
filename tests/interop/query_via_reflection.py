#!/usr/bin/env python3
"""Interop check for the auditlens gRPC API, written as an outside client would.

It uses only grpcio, grpcio-reflection and pyarrow: no auditlens code and no
.proto file. It discovers `auditlens.v1.AuditLens` through server reflection,
builds the request and response types from the descriptors the server sends,
runs `Query`, joins the Arrow IPC pieces (schema message, batch messages,
end-of-stream marker from the summary) and reads them with pyarrow.

Usage: query_via_reflection.py HOST:PORT "SQL" [TOKEN]
Prints one JSON object: services, row count, columns, first row, summary.
"""

import collections
import json
import sys

import grpc
import pyarrow as pa
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "auditlens.v1.AuditLens"


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call, reflection included."""

    def __init__(self, token):
        self._token = token

    def _with_token(self, details):
        metadata = list(details.metadata or []) + [("authorization", f"Bearer {self._token}")]
        return _CallDetails(
            details.method, details.timeout, metadata, details.credentials,
            getattr(details, "wait_for_ready", None), getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def main() -> int:
    address, sql = sys.argv[1], sys.argv[2]
    token = sys.argv[3] if len(sys.argv) > 3 else None

    channel = grpc.insecure_channel(address)
    if token:
        channel = grpc.intercept_channel(channel, BearerToken(token))
    reflection = ProtoReflectionDescriptorDatabase(channel)
    services = list(reflection.get_services())
    if SERVICE not in services:
        print(f"{SERVICE} not listed by reflection: {services}", file=sys.stderr)
        return 2

    pool = descriptor_pool.DescriptorPool(reflection)
    service = pool.FindServiceByName(SERVICE)
    method = service.methods_by_name["Query"]
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    query = channel.unary_stream(
        f"/{SERVICE}/Query",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )

    ipc = bytearray()
    summary = None
    parts = []
    for message in query(request_type(sql=sql, max_chunk_bytes=4096)):
        part = message.WhichOneof("part")
        parts.append(part)
        if part == "schema":
            ipc += message.schema.ipc
        elif part == "batch":
            ipc += message.batch.ipc
        elif part == "summary":
            ipc += message.summary.ipc_end
            summary = message.summary
    if summary is None or parts[0] != "schema":
        print(f"unexpected message order: {parts}", file=sys.stderr)
        return 3

    table = pa.ipc.open_stream(pa.py_buffer(bytes(ipc))).read_all()
    first = table.slice(0, 1).to_pylist()
    print(
        json.dumps(
            {
                "services": services,
                "rows": table.num_rows,
                "columns": table.column_names,
                "first_row": first[0] if first else None,
                "summary_rows": summary.rows,
                "truncated": summary.truncated,
                "batches": parts.count("batch"),
            },
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
