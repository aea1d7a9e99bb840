-- Zoe state, schema version 3, PostgreSQL.

-- The role the auth plugin gave at the last login (RecordLogin rewrites it)
-- and the role an admin set in Zoe (NULL: none), which wins and survives
-- logins. Existing users keep their role as the auth plugin's: version 2
-- lost every admin change at the next login anyway.
ALTER TABLE users RENAME COLUMN role TO auth_role;
ALTER TABLE users ADD COLUMN role_override TEXT;

-- events.id needs no change: an identity column's sequence never hands an
-- id out twice, even after deletes. (SQLite's migration 0003 rebuilds its
-- events table for that.) That ids also become visible in order is the
-- store's doing (addEvent).
