-- Like merge_by_stack, restricted to the label sets in temp table sel_labelsets (per profile).
SELECT s.stack_id, s.labelset_id, SUM(s.value)::BIGINT AS value
FROM samples s
JOIN sel_pairs p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY ALL
