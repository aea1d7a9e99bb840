-- Zoe state, schema version 4: facts about the store itself, by key. The
-- store's identity ("identity": 32 hex digits, random) is written once, by
-- the migration that creates the table, and never changed: the engine
-- labels what it creates on the back-end with it, so that two daemons of
-- one deployment name, each with a store of its own, tell their services
-- apart and never remove each other's.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
