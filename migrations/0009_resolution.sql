-- How an issue was resolved: NULL (plain resolve: any new event regresses),
-- 'next_release' (events from releases up to `resolved_in_release` do not
-- regress) or 'in_release' (events from releases older than
-- `resolved_in_release` do not regress).
ALTER TABLE issue ADD COLUMN resolution_type TEXT;
