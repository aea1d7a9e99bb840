-- Zoe state, schema version 2, PostgreSQL: the back-end's id of the
-- execution's network, recorded as soon as the network exists so that a
-- restarted daemon can remove it. NULL: no network (yet).
ALTER TABLE executions ADD COLUMN network_id TEXT;

-- Version 1 kept the id only in the reason of the queued→starting event,
-- "... (network id <id>)": carried over, so that executions active during
-- the upgrade keep their network.
UPDATE executions SET network_id = (
    SELECT substring(ev.reason FROM '\(network id ([^)[:space:]]+)\)')
    FROM events ev
    WHERE ev.execution_id = executions.id AND ev.service_name = '' AND ev.from_status = 'queued' AND ev.to_status = 'starting'
      AND substring(ev.reason FROM '\(network id ([^)[:space:]]+)\)') IS NOT NULL
    ORDER BY ev.id DESC LIMIT 1);
