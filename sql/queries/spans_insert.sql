-- Store the spans of temp table new_spans, skipping ones already stored (and repeats in the batch).
INSERT INTO spans
SELECT n.* FROM new_spans n
WHERE NOT EXISTS (SELECT 1 FROM spans s
                  WHERE s.tenant = n.tenant AND s.span_id = n.span_id
                    AND s.trace_hi = n.trace_hi AND s.trace_lo = n.trace_lo)
QUALIFY row_number() OVER (PARTITION BY n.tenant, n.trace_hi, n.trace_lo, n.span_id) = 1
