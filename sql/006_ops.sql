-- 006_ops: what the day-to-day commands (utl breaks, utl runs) answer from.
--
-- utl.reconciled: the accounts a date reconciled (they had a balance snapshot that day).
-- An account with positions but no row here was not reconciled on that date: its breaks
-- are those of its last reconciled date, carried, and "no rows in utl.breaks" does not
-- mean "no breaks" for it.
CREATE TABLE utl.reconciled (
    business_date date NOT NULL,
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    PRIMARY KEY (business_date, venue, account)
);

-- What each run did, for `utl runs`: counts recorded when the run completes.
ALTER TABLE utl.runs
    ADD COLUMN dates_total    integer,  -- business dates from the first through through_date
    ADD COLUMN dates_run      integer,  -- of those, the dates this run wrote (missing or stale)
    ADD COLUMN first_run_date date,     -- the first date it wrote; null when nothing needed running
    ADD COLUMN legs           bigint,   -- legs booked over the dates it wrote
    ADD COLUMN breaks         integer,  -- breaks open on through_date
    ADD COLUMN quarantined    integer;  -- refused rows through through_date

-- Dates written before this migration have no utl.reconciled rows: make them stale, so the
-- next `utl eod` rewrites them (and records their reconciled accounts) instead of showing
-- every account as not reconciled.
UPDATE utl.day_runs SET fingerprint = 'written before 006_ops';
