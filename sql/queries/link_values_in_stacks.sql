-- Like link_values, counting only samples whose stack is in temp table want_stacks.
SELECT CASE WHEN p.span_id <> 0 THEN p.span_id ELSE p.root_span_id END AS who, p.trace_hi, p.trace_lo,
       SUM(s.value)::BIGINT AS value
FROM samples s
JOIN sel_links p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
WHERE s.stack_id IN (SELECT id FROM want_stacks)
GROUP BY ALL
