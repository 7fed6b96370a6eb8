-- 001_core: the tables the end-of-day run writes (contract: ../shared/contracts/eod.md,
-- "What lands in PostgreSQL"). Every quantity and amount is numeric without a precision
-- cap: the database never rounds what the ledger computed exactly. Codes and paths are
-- COLLATE "C": identifiers, not prose, so byte order is the right order, and key
-- comparisons are plain memcmp (replace_rows sends rows sorted the same way).
--
-- positions and breaks are partitioned by month of business_date: a rerun of a date
-- deletes and rewrites one day, old months can be detached or dropped whole, and date
-- queries touch one partition. utl.store.partitions creates a month's partition before
-- the first write to it; the DEFAULT partition only catches rows written some other way.

CREATE SCHEMA IF NOT EXISTS utl;

CREATE TABLE utl.positions (
    business_date  date    NOT NULL,
    venue          text COLLATE "C" NOT NULL,
    account        text COLLATE "C" NOT NULL,
    asset          text COLLATE "C" NOT NULL,  -- canonical code
    qty            numeric NOT NULL,  -- ledger position at end of business_date
    mark           numeric,           -- the day's mark; 1 for the reporting currency
    market_value   numeric,           -- qty * mark
    cost_basis     numeric,
    unrealized_pnl numeric,
    book           text,              -- where lots match; the account unless configured
    PRIMARY KEY (business_date, venue, account, asset)
) PARTITION BY RANGE (business_date);

CREATE TABLE utl.positions_default PARTITION OF utl.positions DEFAULT;

CREATE TABLE utl.breaks (
    business_date date    NOT NULL,
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    ledger_qty    numeric NOT NULL,
    venue_qty     numeric NOT NULL,  -- 0 when the snapshot does not list the asset
    diff          numeric NOT NULL,
    tolerance     numeric NOT NULL,
    first_seen    date    NOT NULL,  -- first date of the unbroken run of breaks of this key
    kind          text    NOT NULL
        CHECK (kind IN ('missing_at_venue', 'missing_in_ledger', 'qty_mismatch')),
    mark          numeric,           -- null where the asset has no mark that day
    diff_value    numeric,           -- diff * mark, in the reporting currency
    PRIMARY KEY (business_date, venue, account, asset),
    -- The contract's definitions, kept true by the database itself.
    CHECK (diff = venue_qty - ledger_qty),
    CHECK (tolerance >= 0 AND abs(diff) > tolerance),
    CHECK (first_seen <= business_date)
) PARTITION BY RANGE (business_date);

CREATE TABLE utl.breaks_default PARTITION OF utl.breaks DEFAULT;

-- Ops read one day's breaks oldest first ("open for 9 days") or largest first (value at
-- risk); the primary key already serves lookups of one key on one date.
CREATE INDEX breaks_by_age ON utl.breaks (business_date, first_seen);
CREATE INDEX breaks_by_value ON utl.breaks (business_date, abs(diff_value) DESC NULLS LAST);

-- One row per unbroken run of breaks of a key: open while cleared_on is null.
CREATE TABLE utl.break_history (
    venue      text COLLATE "C" NOT NULL,
    account    text COLLATE "C" NOT NULL,
    asset      text COLLATE "C" NOT NULL,
    first_seen date NOT NULL,
    last_seen  date NOT NULL,
    cleared_on date,  -- first date reconciled without a break after last_seen
    PRIMARY KEY (venue, account, asset, first_seen),
    CHECK (first_seen <= last_seen),
    CHECK (cleared_on IS NULL OR cleared_on > last_seen)
);

CREATE INDEX break_history_open ON utl.break_history (first_seen) WHERE cleared_on IS NULL;

-- One row per refused input row (or per refused file: row and column null).
CREATE TABLE utl.quarantine (
    business_date date,      -- null where the row's date is unknown (unparseable timestamp)
    file          text COLLATE "C" NOT NULL,  -- relative to the landing folder
    "row"         bigint,    -- 1-based data row; null when the whole file is refused
    "column"      text,      -- null when the whole row is refused
    reason        text NOT NULL,
    raw           text
);

CREATE INDEX quarantine_by_file ON utl.quarantine (file);
CREATE INDEX quarantine_by_date ON utl.quarantine (business_date);

CREATE TABLE utl.runs (
    run_id       bigserial PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    landing      text,
    through_date date,
    status       text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed')),
    message      text
);
