SELECT DISTINCT profile_type FROM profiles
WHERE tenant = $tenant AND time_nanos BETWEEN $start AND $end
ORDER BY profile_type
