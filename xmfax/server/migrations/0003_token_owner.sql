-- Per-token ownership: a token acts for an owner (default: its own name), and sees the
-- faxes of every token of that owner (revoked ones included). The index serves
-- list_faxes(token_ids=...), newest first.
ALTER TABLE tokens ADD COLUMN owner TEXT;
CREATE INDEX faxes_token ON faxes (token_id, created_at);
