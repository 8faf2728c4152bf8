-- Stacks that contain any of the frames in temp table want_frames.
SELECT DISTINCT id FROM (SELECT id, unnest(frames) AS f FROM stacks)
WHERE f IN (SELECT id FROM want_frames)
ORDER BY id
