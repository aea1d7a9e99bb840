-- Zoe state, schema version 2, SQLite: the back-end's id of the execution's
-- network, recorded as soon as the network exists so that a restarted
-- daemon can remove it. NULL: no network (yet).
ALTER TABLE executions ADD COLUMN network_id TEXT;

-- Version 1 kept the id only in the reason of the queued→starting event,
-- "... (network id <id>)": carried over, so that executions active during
-- the upgrade keep their network.
UPDATE executions SET network_id = (
    SELECT substr(rest, 1, instr(rest, ')') - 1)
    FROM (SELECT substr(reason, instr(reason, '(network id ') + 12) AS rest, id
          FROM events
          WHERE execution_id = executions.id AND service_name = '' AND from_status = 'queued' AND to_status = 'starting'
            AND instr(reason, '(network id ') > 0)
    WHERE instr(rest, ')') > 1
    ORDER BY id DESC LIMIT 1);
