-- New frames of a write batch (registered as new_frames).
INSERT INTO frames (id, name, system_name, file, line, start_line, address, mapping_file)
SELECT id, name, system_name, file, line, start_line, address, mapping_file
FROM new_frames
