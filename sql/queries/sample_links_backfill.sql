-- Once, when migration 002 meets samples stored before it: sample_links rows for every stored
-- (profile, label set) pair whose label set carries a link (temp table linked_labelsets).
INSERT INTO sample_links
SELECT p.profile_id, p.labelset_id, l.span_id, l.trace_hi, l.trace_lo, l.root_span_id,
       pr.time_nanos, pr.duration_nanos
FROM (SELECT DISTINCT profile_id, labelset_id FROM samples
      WHERE labelset_id IN (SELECT labelset_id FROM linked_labelsets)) p
JOIN linked_labelsets l USING (labelset_id)
JOIN profiles pr ON pr.id = p.profile_id
