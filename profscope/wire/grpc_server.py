"""OTLP profiles over gRPC: ``opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export``
on its own listener (default port 4317), sharing the app's store and ingest queue.

Tenancy comes from the ``x-scope-orgid`` metadata key, like the HTTP header. Errors use gRPC
status codes: INVALID_ARGUMENT for bad payloads (including other schema versions),
UNAUTHENTICATED without a tenant when multi-tenancy is on, RESOURCE_EXHAUSTED when overloaded.
"""
from __future__ import annotations

import logging
from concurrent import futures

import grpc
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as pb

from ..errors import ProfscopeError
from ..tenancy import grpc_tenant
from .otlp import decode_export_request

log = logging.getLogger("profscope.grpc")

SERVICE = "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          413: grpc.StatusCode.INVALID_ARGUMENT, 415: grpc.StatusCode.INVALID_ARGUMENT,
          422: grpc.StatusCode.INVALID_ARGUMENT, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
          501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE}



class _Handler(grpc.GenericRpcHandler):
    def __init__(self, app) -> None:
        self.app = app
        state = app.extensions["profscope"]
        self.limits = state.limits
        self.multitenancy = bool(state.config["multitenancy"])
        self._export = grpc.unary_unary_rpc_method_handler(
            self.export, request_deserializer=lambda b: b,   # decoded (and checked) in export()
            response_serializer=pb.ExportProfilesServiceResponse.SerializeToString)

    def service(self, handler_call_details):
        if handler_call_details.method == f"/{SERVICE}/Export":
            return self._export
        return None

    def export(self, raw: bytes, context: grpc.ServicerContext):
        from ..api.otlp import ingest_export_request
        try:
            tenant = grpc_tenant(context, self.multitenancy)
            req = decode_export_request(raw, "application/x-protobuf", None, self.limits)
            with self.app.app_context():
                ingest_export_request(req, tenant)
        except ProfscopeError as e:
            context.abort(_CODES.get(e.status, grpc.StatusCode.INTERNAL), e.message)
        except Exception as e:
            log.exception("OTLP gRPC export failed")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {e.__class__.__name__}")
        return pb.ExportProfilesServiceResponse()


def start_grpc_server(app, host: str = "127.0.0.1", port: int = 4317, workers: int = 8) -> tuple[grpc.Server, int]:
    """Start the listener; returns (server, bound port). ``port=0`` picks a free port."""
    limits = app.extensions["profscope"].limits
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
                         options=[("grpc.max_receive_message_length", limits.max_body_bytes)])
    from .grpc_traces import trace_service_handler
    state = app.extensions["profscope"]
    server.add_generic_rpc_handlers((_Handler(app),
                                     trace_service_handler(lambda: state.store, bool(state.config["multitenancy"]))))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise OSError(f"cannot listen for OTLP gRPC on {host}:{port}")
    server.start()
    return server, bound
