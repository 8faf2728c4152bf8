"""gRPC ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` for the OTLP listener.

Register on any ``grpc.Server``::

    server.add_generic_rpc_handlers((trace_service_handler(lambda: store, multitenancy),))

``get_store`` is called per request (so the handler can be built before the store exists).
Bad spans answer ``INVALID_ARGUMENT`` with the same message the HTTP endpoint gives; nothing of
a rejected request is stored. The tenant comes from the ``x-scope-orgid`` metadata key; with
``multitenancy`` a request without it is ``UNAUTHENTICATED``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..errors import BadInput, Overloaded, ProfscopeError, Unauthorized
from ..formats.otlp_traces import spans_from_request
from ..tenancy import grpc_tenant

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"



def trace_service_handler(get_store: Callable[[], Any], multitenancy: bool = False) -> grpc.GenericRpcHandler:
    """A generic handler serving ``TraceService/Export`` into ``get_store().traces``."""

    def export(request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            get_store().traces.ingest_spans(spans_from_request(request), grpc_tenant(context, multitenancy))
        except Unauthorized as e:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, e.message)
        except Overloaded as e:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, e.message)
        except BadInput as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
        except ProfscopeError as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, e.message)
        return ExportTraceServiceResponse()

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString),
    })
