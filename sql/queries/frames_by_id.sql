SELECT id, name, system_name, file, line, start_line, address, mapping_file
FROM frames WHERE id IN (SELECT id FROM want_ids) ORDER BY id
