-- Zoe state, schema version 3, SQLite.

-- The role the auth plugin gave at the last login (RecordLogin rewrites it)
-- and the role an admin set in Zoe (NULL: none), which wins and survives
-- logins. Existing users keep their role as the auth plugin's: version 2
-- lost every admin change at the next login anyway.
ALTER TABLE users RENAME COLUMN role TO auth_role;
ALTER TABLE users ADD COLUMN role_override TEXT;

-- Version 2's events.id was a plain rowid: after the newest events were
-- deleted (DeleteExecution) SQLite handed their ids out again, and a client
-- of the event feed resuming from the last id it saw would miss the new
-- events. AUTOINCREMENT never reuses an id; copying the rows with their ids
-- starts its counter at the largest. No client can hold an id from before
-- this version: the feed is new in it.
CREATE TABLE events_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    service_name TEXT    NOT NULL DEFAULT '',
    at           TEXT    NOT NULL,
    from_status  TEXT    NOT NULL,
    to_status    TEXT    NOT NULL,
    reason       TEXT    NOT NULL DEFAULT ''
);
INSERT INTO events_v3 (id, execution_id, service_name, at, from_status, to_status, reason)
    SELECT id, execution_id, service_name, at, from_status, to_status, reason FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_execution ON events (execution_id, id);
