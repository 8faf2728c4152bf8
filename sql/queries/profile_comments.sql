-- Comments of the selected profiles (temp table sel_profiles) that have any, by id: the export
-- of a selection writes them back, deduplicated, in this order.
SELECT id, comments FROM profiles
WHERE id IN (SELECT id FROM sel_profiles) AND len(comments) > 0
ORDER BY id
