-- The selected profiles (temp table sel_profiles), newest first, at most $limit.
SELECT id, series_id, profile_type, time_nanos, duration_nanos, n_samples, total, source_format, source_id,
       coalesce(comments, []) AS comments
FROM profiles
WHERE id IN (SELECT id FROM sel_profiles)
ORDER BY time_nanos DESC, id DESC
LIMIT $limit
