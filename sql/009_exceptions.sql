-- 009_exceptions: what the ledger cannot explain on its own (contract: ../shared/contracts/ledger.md).
--
-- utl.exceptions: one row per (business_date, venue, account, asset, kind) while the case
-- stands. in_transit: withdrawals unmatched once the transfer window has passed (quantity:
-- their gross amount); external_deposit: deposits that matched no withdrawal, booked at the
-- day's mark; missing_acquisition: a spot position below zero in an account not declared
-- margin or derivatives (quantity: the uncovered part). value = quantity * mark (null where
-- the asset has no mark that day: unpriced, never zero). refs: the source rows, file:row;...
CREATE TABLE utl.exceptions (
    landing       text COLLATE "C" NOT NULL,  -- the landing folder's, as every per-date table (008)
    business_date date    NOT NULL,
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    kind          text COLLATE "C" NOT NULL,
    quantity      numeric NOT NULL,
    mark          numeric,
    value         numeric,
    first_seen    date    NOT NULL,  -- first date of the unbroken run of dates with this row
    first_ts      timestamptz,       -- when the case began (oldest withdrawal, first deposit, the leg that went short)
    age_days      integer,           -- business_date - the date of first_ts
    refs          text    NOT NULL DEFAULT '',
    PRIMARY KEY (landing, business_date, venue, account, asset, kind),
    CHECK (quantity > 0),
    CHECK (first_seen <= business_date)
) PARTITION BY RANGE (business_date);

CREATE TABLE utl.exceptions_default PARTITION OF utl.exceptions DEFAULT;

-- A (book, asset) whose account holds the asset below zero that day: its PnL rests on a
-- disposal of something no file shows being acquired.
ALTER TABLE utl.pnl ADD COLUMN provisional boolean NOT NULL DEFAULT false;

-- Dates written before this migration have no exceptions and unmarked PnL: make them stale,
-- so the next `utl eod` rewrites them.
UPDATE utl.day_runs SET fingerprint = 'written before 009_exceptions';
