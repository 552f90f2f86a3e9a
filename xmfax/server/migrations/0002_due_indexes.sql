-- The claim queries walk these in due order and stop at LIMIT, instead of sorting every
-- queued row on each claim. Partial (only the rows waiting) and on the same expression as
-- the queries: COALESCE(next_attempt_at, 0) (no due time = due at once, first).
CREATE INDEX faxes_due ON faxes ((COALESCE(next_attempt_at, 0)), created_at) WHERE status = 'queued';
CREATE INDEX notifications_due ON notifications ((COALESCE(next_attempt_at, 0)), id) WHERE status = 'pending';
