-- utl.runs.status gains 'interrupted': a run whose process ended (Ctrl-C, kill, a lost
-- session) before it could record an outcome. The next `utl eod` marks it so when it takes
-- the run lock: a 'running' row whose process still lived would hold that lock.
ALTER TABLE utl.runs DROP CONSTRAINT IF EXISTS runs_status_check;
ALTER TABLE utl.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'completed', 'failed', 'interrupted'));
