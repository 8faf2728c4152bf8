-- At ingest, inside the samples' transaction: one sample_links row per new (profile, label set)
-- pair whose label set carries a link (temp tables new_samples, new_labelset_links).
INSERT INTO sample_links
SELECT x.profile_id, x.labelset_id, l.span_id, l.trace_hi, l.trace_lo, l.root_span_id,
       p.time_nanos, p.duration_nanos
FROM (SELECT DISTINCT profile_id, labelset_id FROM new_samples) x
JOIN new_labelset_links l ON l.labelset_id = x.labelset_id
JOIN profiles p ON p.id = x.profile_id
