-- Sample values are stored as raw * scale, scale being the greatest common divisor of one
-- profile's values (typically the sampling period): raw values are small counts that bit-pack
-- into a few bits, scale is constant per profile and compresses to nothing. `value` stays a
-- (virtual) column, so every reader keeps working.
CREATE TABLE samples_scaled (
    profile_id  BIGINT NOT NULL,
    stack_id    INTEGER NOT NULL,
    labelset_id INTEGER NOT NULL,
    raw         BIGINT NOT NULL,
    scale       BIGINT NOT NULL,
    value       BIGINT GENERATED ALWAYS AS (raw * scale) VIRTUAL
);
INSERT INTO samples_scaled (profile_id, stack_id, labelset_id, raw, scale)
    SELECT profile_id, stack_id, labelset_id, value, 1 FROM samples;
DROP TABLE samples;
ALTER TABLE samples_scaled RENAME TO samples;
