-- 012_derivatives: derivative positions per date, and breaks of positions beside balances
-- (contract: ../shared/contracts/derivatives.md, "Reconciliation" and "What lands in PostgreSQL").
--
-- utl.derivative_positions: one row per (landing, business_date, venue, account, instrument)
-- open in the ledger or in the venue's positions file that date. Instruments appear only
-- here, never in utl.positions (spot and settle assets). Like every per-date table since
-- 008_landing_keys, the landing folder comes first in the key: a run replaces its own
-- landing's slice of a date. Partitioned by month of business_date like utl.positions
-- (utl.store.partitions creates the month and day partitions on first write).
--
-- utl.breaks gains subject: 'balance' (a snapshot's asset: every row written before) or
-- 'position' (a positions file's instrument, asset = the ccxt symbol). A position break can
-- also be an expiry without the venue's delivery row (kind expiry_without_delivery). The
-- breaks a date cleared (utl.cleared_breaks) and the history view carry the subject too.

CREATE TABLE utl.derivative_positions (
    landing            text COLLATE "C" NOT NULL,
    business_date      date    NOT NULL,
    venue              text COLLATE "C" NOT NULL,
    account            text COLLATE "C" NOT NULL,
    instrument         text COLLATE "C" NOT NULL,  -- ccxt symbol: BTC/USDT:USDT, BTC/USD:BTC-261225-100000-C
    type               text    NOT NULL CHECK (type IN ('swap', 'future', 'option')),
    settle_asset       text COLLATE "C" NOT NULL,
    qty                numeric NOT NULL,  -- ledger, signed, in the position unit
    venue_qty          numeric,           -- null on a date without a positions file
    contract_size      numeric NOT NULL CHECK (contract_size > 0),
    entry_price        numeric,           -- average entry; null where the ledger is flat
    venue_entry_price  numeric,           -- the venue's, beside it (a difference is not a break)
    mark               numeric,           -- in the instrument's quote
    unrealized_pnl     numeric,           -- settle asset; null where the ledger is flat
    unrealized_pnl_usd numeric,           -- reporting currency; null when the settle asset has no mark
    realized_pnl       numeric NOT NULL,  -- the day's, settle asset
    funding            numeric NOT NULL,
    fees               numeric NOT NULL,  -- charged positive
    delta              numeric,           -- base units; options: the venue's, null when not stated
    delta_usd          numeric,
    PRIMARY KEY (landing, business_date, venue, account, instrument),
    CHECK ((qty = 0) = (entry_price IS NULL))
) PARTITION BY RANGE (business_date);

CREATE TABLE utl.derivative_positions_default PARTITION OF utl.derivative_positions DEFAULT;

CREATE INDEX derivative_positions_by_instrument ON utl.derivative_positions (landing, instrument, business_date);

ALTER TABLE utl.breaks ADD COLUMN subject text NOT NULL DEFAULT 'balance'
    CHECK (subject IN ('balance', 'position'));
ALTER TABLE utl.breaks DROP CONSTRAINT breaks_kind_check;
ALTER TABLE utl.breaks ADD CONSTRAINT breaks_kind_check
    CHECK (kind IN ('missing_at_venue', 'missing_in_ledger', 'qty_mismatch', 'expiry_without_delivery'));

ALTER TABLE utl.cleared_breaks ADD COLUMN subject text NOT NULL DEFAULT 'balance'
    CHECK (subject IN ('balance', 'position'));

-- One row per unbroken run of breaks of a landing's key: open while cleared_on is null.
-- The key's subject follows from its asset (a symbol or an asset code), but is shown.
DROP VIEW utl.break_history;
CREATE VIEW utl.break_history AS
SELECT b.landing, b.venue, b.account, b.asset, b.first_seen, max(b.business_date) AS last_seen,
       c.business_date AS cleared_on, b.subject
FROM utl.breaks b
LEFT JOIN utl.cleared_breaks c USING (landing, venue, account, asset, first_seen)
GROUP BY b.landing, b.venue, b.account, b.asset, b.first_seen, c.business_date, b.subject;
