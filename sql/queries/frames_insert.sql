-- New frames of a write batch (registered as new_frames). The stored hash is DuckDB's hash of the
-- frame's content, for inspection only: lookups use the content itself.
INSERT INTO frames (id, hash, name, system_name, file, line, start_line, address, mapping_file)
SELECT id, hash(name, system_name, file, line, start_line, address, mapping_file),
       name, system_name, file, line, start_line, address, mapping_file
FROM new_frames
