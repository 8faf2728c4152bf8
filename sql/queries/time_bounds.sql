-- Oldest and newest profile time of a tenant.
SELECT min(time_nanos), max(time_nanos) FROM profiles WHERE tenant = $tenant
