-- Like link_values, counting only samples whose stack is in temp table want_stacks.
SELECT p.span_id, p.trace_hi, p.trace_lo, p.root_span_id, SUM(s.value)::BIGINT AS value
FROM samples s
JOIN sel_links p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
WHERE s.stack_id IN (SELECT id FROM want_stacks)
GROUP BY ALL
