-- Like profile_group_sums, restricted to the (profile, label set) pairs in temp table sel_pairs.
SELECT s.profile_id, g.grp, SUM(s.value)::BIGINT AS value
FROM samples s
JOIN stack_groups g ON g.stack_id = s.stack_id
JOIN sel_pairs p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY ALL
