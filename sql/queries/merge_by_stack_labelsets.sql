-- Like merge_by_stack, restricted to the (profile, label set) pairs in temp table sel_pairs.
-- The two IN filters run as cheap semi-joins on one column each before the two-key join (3x
-- faster for a thousand pairs spread over 10M rows); for a few pairs DuckDB's join filter
-- pushdown also skips the row groups of other profiles.
SELECT s.stack_id, SUM(s.value)::BIGINT AS value
FROM (SELECT * FROM samples
      WHERE labelset_id IN (SELECT labelset_id FROM sel_pairs)
        AND profile_id IN (SELECT profile_id FROM sel_pairs)) s
JOIN sel_pairs p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY s.stack_id
