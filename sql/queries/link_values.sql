-- Sampled value per span (its span id, else its Datadog local root) and trace over the linked
-- pairs in temp table sel_links.
SELECT CASE WHEN p.span_id <> 0 THEN p.span_id ELSE p.root_span_id END AS who, p.trace_hi, p.trace_lo,
       SUM(s.value)::BIGINT AS value
FROM samples s
JOIN sel_links p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY ALL
