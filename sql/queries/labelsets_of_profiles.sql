SELECT DISTINCT profile_id, labelset_id FROM samples WHERE profile_id IN (SELECT id FROM sel_profiles)
