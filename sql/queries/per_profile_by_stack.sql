-- Per (profile, stack) sums of the selected profiles (temp table sel_profiles), label sets merged.
-- abs_value keeps the pprof total of each profile (sum of |value| per stack and label set).
SELECT s.profile_id, s.stack_id, SUM(s.value)::BIGINT AS value, SUM(abs(s.value))::BIGINT AS abs_value
FROM samples s
WHERE s.profile_id IN (SELECT id FROM sel_profiles)
GROUP BY ALL
