-- Event navigation on an issue orders by (received_at, id) and seeks from
-- one event to the next; with `id` in the index that is one index probe
-- instead of a scan over the issue's events. The old index's queries are
-- served by this one, so it goes: the write path keeps four B-trees.
CREATE INDEX event_issue_received_id ON event (issue_id, received_at DESC, id DESC);
DROP INDEX event_issue_received;
