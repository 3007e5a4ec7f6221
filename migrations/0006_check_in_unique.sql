-- A check-in is opened (`in_progress`) and later closed (`ok`/`error`) with
-- the same id; the second message updates the first instead of adding a row.
DELETE FROM monitor_check_in a USING monitor_check_in b
 WHERE a.monitor_id = b.monitor_id AND a.check_in_id = b.check_in_id AND a.id < b.id;
CREATE UNIQUE INDEX monitor_check_in_unique ON monitor_check_in (monitor_id, check_in_id);
