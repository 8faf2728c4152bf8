SELECT st.id, st.frames FROM stacks st WHERE st.id IN (SELECT id FROM want_ids) ORDER BY st.id
