-- pprof total of each profile, over the (profile, label set) pairs in temp table sel_pairs only.
SELECT s.profile_id, SUM(abs(s.value))::BIGINT AS total
FROM samples s
JOIN sel_pairs p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY s.profile_id
