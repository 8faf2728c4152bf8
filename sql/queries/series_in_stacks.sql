-- Time series of the selected profiles (temp table sel_profiles) counting only the samples of
-- the stacks in temp table sel_stacks (Pyroscope's stack_trace_selector on SelectSeries).
-- n counts every selected profile of the bucket, as without a stack selection.
SELECT p.series_id, (p.time_nanos // $step) * $step AS t,
       COALESCE(SUM(s.value), 0)::BIGINT AS v, count(DISTINCT p.id) AS n
FROM profiles p
LEFT JOIN samples s ON s.profile_id = p.id AND s.stack_id IN (SELECT id FROM sel_stacks)
WHERE p.id IN (SELECT id FROM sel_profiles)
GROUP BY ALL
ORDER BY t
