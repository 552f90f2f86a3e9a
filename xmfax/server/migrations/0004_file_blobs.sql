-- Fax files held in the database itself (PostgreSQL): the nodes of a cluster share only the
-- database, not a folder. The bytes are the same AES-GCM sealed file the SQLite store keeps
-- on disk (crypto.py); a files row whose path is "db:" has its bytes here. Deleting the
-- files row deletes them.
CREATE TABLE file_blobs (
    file_id TEXT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    data {blob} NOT NULL
);
