-- Zoe state, schema version 5, PostgreSQL.

-- The e-mail address an admin set in Zoe (NULL: none). It wins over the
-- auth source's (email), which logins rewrite, until an admin clears it.
ALTER TABLE users ADD COLUMN email_override TEXT;

-- How far a consumer of the event feed has read, by consumer name: the
-- largest event id it is done with. The e-mail notifier resumes from it
-- after a restart.
CREATE TABLE feed_cursors (
    name     TEXT PRIMARY KEY,
    event_id BIGINT NOT NULL CHECK (event_id >= 0)
);
