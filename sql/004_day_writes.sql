-- 004_day_writes: each business date is written alone (the run is a fold over days).
--
-- A date's run replaces that date's rows and nothing else, so what used to be rewritten
-- whole on every run is now kept per date:
-- - the quarantine: each refused row carries the business date it belongs to, null where
--   that is unknown (a file no reader takes, a row of a trades export);
-- - the break history: derived from the breaks themselves plus, per date, the breaks that
--   date cleared (utl.cleared_breaks), instead of a table rebuilt from the whole run;
-- - utl.day_runs: which dates are written, from which inputs (their fingerprint), by which
--   run; a date whose inputs changed since is stale, and so is every date after it.

CREATE TABLE utl.cleared_breaks (
    business_date date NOT NULL,  -- the date the break cleared on
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    first_seen    date NOT NULL,  -- the first date of the run of breaks that cleared
    PRIMARY KEY (business_date, venue, account, asset),
    CHECK (first_seen < business_date)
);

DROP TABLE utl.break_history;

-- One row per unbroken run of breaks of a key: open while cleared_on is null.
CREATE VIEW utl.break_history AS
SELECT b.venue, b.account, b.asset, b.first_seen, max(b.business_date) AS last_seen, c.business_date AS cleared_on
FROM utl.breaks b
LEFT JOIN utl.cleared_breaks c USING (venue, account, asset, first_seen)
GROUP BY b.venue, b.account, b.asset, b.first_seen, c.business_date;

CREATE TABLE utl.day_runs (
    landing       text COLLATE "C" NOT NULL,  -- the landing folder's absolute path
    business_date date NOT NULL,
    fingerprint   text NOT NULL,  -- of the date's inputs (utl.memory)
    run_id        bigint,         -- utl.runs, when the date was written by a utl run
    dagster_run   text,           -- the Dagster run id, when written by one
    legs          bigint NOT NULL,
    written_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (landing, business_date)
);
