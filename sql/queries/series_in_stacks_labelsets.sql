-- Like series_in_stacks, restricted to the (profile, label set) pairs in temp table sel_pairs.
SELECT p.series_id, (p.time_nanos // $step) * $step AS t,
       COALESCE(SUM(s.value) FILTER (WHERE s.stack_id IN (SELECT id FROM sel_stacks)), 0)::BIGINT AS v,
       count(DISTINCT p.id) AS n
FROM samples s
JOIN sel_pairs x ON x.profile_id = s.profile_id AND x.labelset_id = s.labelset_id
JOIN profiles p ON p.id = s.profile_id
GROUP BY ALL
ORDER BY t
