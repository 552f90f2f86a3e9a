-- xmfax serve: the first schema. One file for both databases: the runner in store.py
-- substitutes {id} (auto-increment primary key), {real} (a 64-bit float: epoch seconds)
-- and {json} (JSON as TEXT). Statements end with ';' at the end of a line.

CREATE TABLE faxes (
    id TEXT PRIMARY KEY,
    broadcast_id TEXT,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    reason_text TEXT,
    number TEXT,
    ani TEXT,
    dnis TEXT,
    csid TEXT,
    remote_id TEXT,
    line TEXT,
    pages INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    next_attempt_at {real},
    claimed_by TEXT,
    heartbeat_at {real},
    created_at {real} NOT NULL,
    updated_at {real},
    completed_at {real},
    scheduled_at {real},
    retention_days INTEGER,
    expires_at {real},
    purged_at {real},
    notify_status TEXT NOT NULL DEFAULT 'none',
    token_id INTEGER,
    sender TEXT,
    metadata {json} NOT NULL DEFAULT '{}'
);
CREATE INDEX faxes_claim ON faxes (status, next_attempt_at);
CREATE INDEX faxes_heartbeat ON faxes (status, heartbeat_at);
CREATE INDEX faxes_broadcast ON faxes (broadcast_id);
CREATE INDEX faxes_created ON faxes (created_at);
CREATE INDEX faxes_expires ON faxes (expires_at);

CREATE TABLE events (
    id {id},
    fax_id TEXT NOT NULL REFERENCES faxes (id) ON DELETE CASCADE,
    at {real} NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data {json} NOT NULL DEFAULT '{}'
);
CREATE INDEX events_fax ON events (fax_id, id);

CREATE TABLE calls (
    id {id},
    fax_id TEXT NOT NULL REFERENCES faxes (id) ON DELETE CASCADE,
    attempt INTEGER,
    direction TEXT,
    line TEXT,
    started_at {real},
    ended_at {real},
    duration {real},
    status TEXT,
    reason TEXT,
    pages INTEGER,
    rate INTEGER,
    remote_id TEXT,
    ani TEXT,
    dnis TEXT,
    node TEXT
);
CREATE INDEX calls_fax ON calls (fax_id);
CREATE INDEX calls_started ON calls (started_at);

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    fax_id TEXT NOT NULL REFERENCES faxes (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at {real} NOT NULL,
    UNIQUE (fax_id, kind, name)
);

CREATE TABLE notifications (
    id {id},
    fax_id TEXT NOT NULL REFERENCES faxes (id) ON DELETE CASCADE,
    destination {json} NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {real},
    last_error TEXT,
    claimed_by TEXT,
    heartbeat_at {real},
    delivered_at {real},
    created_at {real} NOT NULL
);
CREATE INDEX notifications_claim ON notifications (status, next_attempt_at);
CREATE INDEX notifications_fax ON notifications (fax_id);

CREATE TABLE tokens (
    id {id},
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    permission TEXT NOT NULL,
    created_at {real} NOT NULL,
    revoked_at {real}
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE numbers (
    number TEXT PRIMARY KEY,
    csid TEXT NOT NULL DEFAULT '',
    users {json} NOT NULL DEFAULT '[]',
    retention_days INTEGER,
    label TEXT NOT NULL DEFAULT '',
    updated_at {real}
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    email TEXT NOT NULL DEFAULT '',
    destinations {json} NOT NULL DEFAULT '[]',
    updated_at {real}
);

CREATE TABLE destinations (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    params {json} NOT NULL DEFAULT '{}',
    updated_at {real}
);

CREATE TABLE rules (
    position INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    rule {json} NOT NULL DEFAULT '{}'
);
