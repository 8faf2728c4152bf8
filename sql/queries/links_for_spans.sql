-- Linked (profile, label set) pairs of the selected profiles (temp table sel_profiles) whose
-- span id is in want_spans, whose local root span id is in want_roots, or whose trace id is in
-- want_traces. Reads only the small sample_links table.
SELECT profile_id, labelset_id, span_id, trace_hi, trace_lo, root_span_id, time_nanos, duration_nanos
FROM sample_links
WHERE profile_id IN (SELECT id FROM sel_profiles)
  AND (span_id IN (SELECT id FROM want_spans)
       OR root_span_id IN (SELECT id FROM want_roots)
       OR (trace_hi, trace_lo) IN (SELECT hi, lo FROM want_traces))
