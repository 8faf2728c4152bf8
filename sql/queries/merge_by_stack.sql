-- Merge the samples of the selected profiles (temp table sel_profiles) per stack.
SELECT s.stack_id, SUM(s.value)::BIGINT AS value
FROM samples s
WHERE s.profile_id IN (SELECT id FROM sel_profiles)
GROUP BY s.stack_id
