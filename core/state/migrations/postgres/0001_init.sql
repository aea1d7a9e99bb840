-- Zoe state, schema version 1, PostgreSQL. Runs with search_path set to the
-- deployment's schema (zoe_<deployment>).
-- JSON documents are json (not jsonb): stored byte for byte.

-- 0 means unlimited. One default quota per role, named after it.
CREATE TABLE quotas (
    name                  TEXT PRIMARY KEY,
    concurrent_executions INTEGER          NOT NULL DEFAULT 0 CHECK (concurrent_executions >= 0),
    cores                 DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (cores >= 0),
    memory                BIGINT           NOT NULL DEFAULT 0 CHECK (memory >= 0),
    runtime_limit_seconds BIGINT           NOT NULL DEFAULT 0 CHECK (runtime_limit_seconds >= 0)
);
INSERT INTO quotas (name, concurrent_executions) VALUES ('guest', 1), ('user', 5), ('admin', 0);

CREATE TABLE users (
    username    TEXT PRIMARY KEY,
    role        TEXT        NOT NULL,
    user_groups JSON        NOT NULL DEFAULT '[]',
    uid         BIGINT,
    gid         BIGINT,
    email       TEXT        NOT NULL DEFAULT '',
    enabled     BOOLEAN     NOT NULL DEFAULT TRUE,
    -- NULL: the role's default quota; deleting a quota returns its users to it.
    quota       TEXT REFERENCES quotas (name) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    last_login  TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_quota ON users (quota);

-- An identity column's sequence never hands out an id twice (ids end up in
-- DNS names).
CREATE TABLE executions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         TEXT             NOT NULL REFERENCES users (username),
    name          TEXT             NOT NULL,
    description   JSON             NOT NULL,
    status        TEXT             NOT NULL,
    size          BIGINT           NOT NULL DEFAULT 0,
    cores         DOUBLE PRECISION NOT NULL DEFAULT 0,
    memory        BIGINT           NOT NULL DEFAULT 0,
    error_message TEXT             NOT NULL DEFAULT '',
    exit_code     INTEGER,
    submitted_at  TIMESTAMPTZ      NOT NULL,
    started_at    TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ
);
-- Listing newest first by owner, by owner and status, by status.
CREATE INDEX executions_owner ON executions (owner, id);
CREATE INDEX executions_owner_status ON executions (owner, status, id);
CREATE INDEX executions_status ON executions (status, id);
-- The quota check (covering: it sums cores and memory) and the active
-- executions.
CREATE INDEX executions_active ON executions (owner, status, cores, memory)
    WHERE status IN ('submitted', 'queued', 'starting', 'running', 'cleaning_up');

CREATE TABLE services (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id   BIGINT  NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    service_group  TEXT    NOT NULL,
    essential      BOOLEAN NOT NULL DEFAULT FALSE,
    status         TEXT    NOT NULL,
    backend_status TEXT    NOT NULL DEFAULT '',
    handle_version BIGINT  NOT NULL DEFAULT 0,
    handle_id      TEXT    NOT NULL DEFAULT '',
    handle_data    BYTEA,
    node           TEXT    NOT NULL DEFAULT '',
    ip             TEXT    NOT NULL DEFAULT '',
    exit_code      INTEGER,
    error_message  TEXT    NOT NULL DEFAULT '',
    restart_count  INTEGER NOT NULL DEFAULT 0,
    startup_order  INTEGER NOT NULL DEFAULT 0,
    description    JSON    NOT NULL,
    UNIQUE (execution_id, name)
);

CREATE TABLE endpoints (
    service_id       BIGINT  NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    port             INTEGER NOT NULL,
    protocol         TEXT    NOT NULL,
    external_address TEXT    NOT NULL DEFAULT '',
    external_port    INTEGER NOT NULL DEFAULT 0,
    url              TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (service_id, name)
);

CREATE TABLE events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id BIGINT      NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    service_name TEXT        NOT NULL DEFAULT '',
    at           TIMESTAMPTZ NOT NULL,
    from_status  TEXT        NOT NULL,
    to_status    TEXT        NOT NULL,
    reason       TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX events_execution ON events (execution_id, id);

CREATE TABLE tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username   TEXT        NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    name       TEXT        NOT NULL,
    hash       BYTEA       NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    last_used  TIMESTAMPTZ,
    UNIQUE (username, name)
);
