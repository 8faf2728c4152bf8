-- Duration and pprof total of each selected profile (temp table sel_profiles), by id.
SELECT id, duration_nanos, total FROM profiles WHERE id IN (SELECT id FROM sel_profiles) ORDER BY id
