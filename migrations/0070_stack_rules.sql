-- Per-project stack-trace rules (grouping enhancements), stored as the text the user
-- wrote; parsed by grouping::StackRules when the project's ingest settings load.
ALTER TABLE project ADD COLUMN stack_rules TEXT NOT NULL DEFAULT '';
