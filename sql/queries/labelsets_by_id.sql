-- Label sets whose id is in temp table want_ids (tag filters evaluate each distinct one once).
SELECT id, keys, vals, units FROM labelsets WHERE id IN (SELECT id FROM want_ids)
