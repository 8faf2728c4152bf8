-- profscope store, schema version 1.
-- Content-addressed dictionaries (frames, stacks, label sets, series) hold each distinct value
-- once, under a dense integer id; the samples table stays narrow.

CREATE TABLE frames (
    id           INTEGER NOT NULL,   -- dense id
    hash         UBIGINT NOT NULL,   -- content hash (name, system_name, file, line, start_line, address, mapping_file)
    name         VARCHAR NOT NULL,   -- '' for address-only frames
    system_name  VARCHAR NOT NULL,
    file         VARCHAR NOT NULL,
    line         BIGINT NOT NULL,
    start_line   BIGINT NOT NULL,
    address      UBIGINT NOT NULL,
    mapping_file VARCHAR NOT NULL
);

CREATE TABLE stacks (
    id     INTEGER NOT NULL,         -- dense id
    hash   UBIGINT NOT NULL,         -- hash of the frame id sequence
    frames INTEGER[] NOT NULL        -- frame ids, leaf first
);

CREATE TABLE labelsets (
    id     INTEGER NOT NULL,
    hash   UBIGINT NOT NULL,
    keys   VARCHAR[] NOT NULL,       -- sorted label names
    vals   VARCHAR[] NOT NULL,       -- string value, or the number for numeric labels
    units  VARCHAR[] NOT NULL        -- unit of numeric labels, '' for string labels
);

CREATE TABLE series (
    id           INTEGER NOT NULL,
    hash         UBIGINT NOT NULL,
    tenant       VARCHAR NOT NULL,
    profile_type VARCHAR NOT NULL,   -- name:sample_type:unit:period_type:period_unit
    keys         VARCHAR[] NOT NULL, -- series labels (service_name, __name__, user tags), sorted
    vals         VARCHAR[] NOT NULL
);

CREATE TABLE profiles (
    id             BIGINT NOT NULL,
    series_id      INTEGER NOT NULL,
    tenant         VARCHAR NOT NULL,
    profile_type   VARCHAR NOT NULL,
    sample_type    VARCHAR NOT NULL,
    sample_unit    VARCHAR NOT NULL,
    period_type    VARCHAR NOT NULL,
    period_unit    VARCHAR NOT NULL,
    period         BIGINT NOT NULL,
    time_nanos     BIGINT NOT NULL,
    duration_nanos BIGINT NOT NULL,
    n_samples      INTEGER NOT NULL,
    total          BIGINT NOT NULL,  -- pprof total (sum of |value|)
    source_format  VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL, -- groups the sample types of one uploaded profile
    ingested_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per (profile, stack, label set); rows of one profile are inserted sorted by stack.
CREATE TABLE samples (
    profile_id  BIGINT NOT NULL,
    stack_id    INTEGER NOT NULL,
    labelset_id INTEGER NOT NULL,
    value       BIGINT NOT NULL
);
