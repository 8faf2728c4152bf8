-- Per profile (temp table sel_profiles), the sum of the values of stacks in each group
-- (temp table stack_groups: stack_id, grp; a stack may be in several groups).
SELECT s.profile_id, g.grp, SUM(s.value)::BIGINT AS value
FROM samples s
JOIN stack_groups g ON g.stack_id = s.stack_id
WHERE s.profile_id IN (SELECT id FROM sel_profiles)
GROUP BY ALL
