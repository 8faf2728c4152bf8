-- Selected profiles (temp table sel_profiles) whose time window overlaps [$start, $end].
SELECT id FROM profiles
WHERE id IN (SELECT id FROM sel_profiles)
  AND time_nanos <= $end AND time_nanos + greatest(duration_nanos, 0) >= $start
ORDER BY id
