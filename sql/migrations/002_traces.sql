-- profscope store, schema version 2: trace-to-profile joins.

-- Which (profile, label set) pairs carry a trace link. One row per pair, written at ingest with
-- the samples; an index-sized table (a span's samples share one label set per profile), so a
-- filter by span or trace id reads this table, then only the samples of the profiles found
-- (rows of a profile are contiguous, so DuckDB's zone maps on samples.profile_id skip the rest).
-- Ids are unsigned ints; 0 means absent. See profscope/traceids.py for the label names.
CREATE TABLE sample_links (
    profile_id     BIGINT NOT NULL,
    labelset_id    INTEGER NOT NULL,
    span_id        UBIGINT NOT NULL,   -- span_id / profile_id / Datadog "span id"
    trace_hi       UBIGINT NOT NULL,   -- trace id, high 64 bits
    trace_lo       UBIGINT NOT NULL,   -- trace id, low 64 bits
    root_span_id   UBIGINT NOT NULL,   -- Datadog "local root span id"
    time_nanos     BIGINT NOT NULL,    -- the profile's start and duration, to match span windows
    duration_nanos BIGINT NOT NULL
);

-- Spans received over OTLP (POST /v1/traces, gRPC TraceService/Export).
CREATE TABLE spans (
    tenant          VARCHAR NOT NULL,
    trace_hi        UBIGINT NOT NULL,
    trace_lo        UBIGINT NOT NULL,
    span_id         UBIGINT NOT NULL,
    parent_span_id  UBIGINT NOT NULL,  -- 0 for a root span
    name            VARCHAR NOT NULL,
    service         VARCHAR NOT NULL,  -- resource attribute service.name, else unknown_service
    kind            INTEGER NOT NULL,  -- OTLP SpanKind number
    start_ns        BIGINT NOT NULL,
    end_ns          BIGINT NOT NULL,
    status_code     INTEGER NOT NULL,  -- 0 unset, 1 ok, 2 error
    status_message  VARCHAR NOT NULL,
    profile_span_id UBIGINT NOT NULL,  -- attribute pyroscope.profile.id (Pyroscope SDKs), 0 = none
    attributes      MAP(VARCHAR, VARCHAR) NOT NULL,   -- span attributes, values as text
    resource        MAP(VARCHAR, VARCHAR) NOT NULL    -- resource attributes, values as text
);
