-- Every linked (profile, label set) pair of the selected profiles (temp table sel_profiles).
SELECT profile_id, labelset_id, span_id, trace_hi, trace_lo, root_span_id, time_nanos, duration_nanos
FROM sample_links
WHERE profile_id IN (SELECT id FROM sel_profiles)
