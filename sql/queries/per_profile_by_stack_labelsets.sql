-- Like per_profile_by_stack, restricted to the (profile, label set) pairs in temp table sel_pairs.
SELECT s.profile_id, s.stack_id, SUM(s.value)::BIGINT AS value, SUM(abs(s.value))::BIGINT AS abs_value
FROM samples s
JOIN sel_pairs p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY ALL
