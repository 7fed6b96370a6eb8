-- 011_stream_landing: each landing folder's stream state stays apart in one database (issues 12, 15).
--
-- 010_stream kept one stream state per database: two landing folders booking into one shared
-- server (UTL_DATABASE_URL) mixed their fills, lots, live positions and committed sequence,
-- and a landing's daily agreement check compared its EOD run with every landing's stream.
-- Every stream table now carries the landing it belongs to, named as 008_landing_keys names
-- it (the landing folder's absolute path, '' for a booker run without one), first in its key.
--
-- Rows written before this migration were booked by one landing's booker, which 010 did not
-- record. Its starting state names it where it started from an end-of-day date: the landing
-- whose last written date is that date (the booker starts from its landing's last completed
-- date); else, as 008 does, the landing last written into the database, else the last run's,
-- else '' (a booker run without a landing).

CREATE TEMP TABLE stream_landing ON COMMIT DROP AS
SELECT coalesce(
    (SELECT d.landing FROM utl.day_runs d
     GROUP BY d.landing
     HAVING max(d.business_date) = (SELECT max(state_date) FROM utl.stream_start WHERE source = 'eod')
     ORDER BY max(d.written_at) DESC, d.landing LIMIT 1),
    (SELECT landing FROM utl.day_runs ORDER BY written_at DESC, business_date DESC LIMIT 1),
    (SELECT landing FROM utl.runs WHERE landing IS NOT NULL ORDER BY run_id DESC LIMIT 1),
    '') AS landing;

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['stream_offset', 'stream_fills', 'stream_legs', 'stream_start', 'stream_lots',
                                'stream_lot_openings', 'stream_day_pnl', 'live_positions', 'stream_quarantine',
                                'stream_breaks']
    LOOP
        EXECUTE format('ALTER TABLE utl.%I ADD COLUMN landing text COLLATE "C"', name);
        EXECUTE format('UPDATE utl.%I SET landing = (SELECT landing FROM stream_landing)', name);
        EXECUTE format('ALTER TABLE utl.%I ALTER COLUMN landing SET NOT NULL', name);
    END LOOP;
END
$$;

ALTER TABLE utl.stream_offset DROP CONSTRAINT stream_offset_pkey;
ALTER TABLE utl.stream_offset ADD PRIMARY KEY (landing, consumer);

ALTER TABLE utl.stream_fills DROP CONSTRAINT stream_fills_pkey;
ALTER TABLE utl.stream_fills ADD PRIMARY KEY (landing, venue, account, symbol, trade_id);

ALTER TABLE utl.stream_legs DROP CONSTRAINT stream_legs_pkey;
ALTER TABLE utl.stream_legs ADD PRIMARY KEY (landing, stream_seq, kind);

ALTER TABLE utl.stream_start DROP CONSTRAINT stream_start_pkey;
ALTER TABLE utl.stream_start ADD PRIMARY KEY (landing, venue, account);

DROP INDEX utl.stream_lots_key;
CREATE INDEX stream_lots_key ON utl.stream_lots (landing, book, asset);

DROP INDEX utl.stream_lot_openings_key;
CREATE INDEX stream_lot_openings_key ON utl.stream_lot_openings (landing, book, asset, business_date);

ALTER TABLE utl.stream_day_pnl DROP CONSTRAINT stream_day_pnl_pkey;
ALTER TABLE utl.stream_day_pnl ADD PRIMARY KEY (landing, business_date, venue, account, asset);

-- Still one row per (venue, account, asset) of a landing, as the contract has it.
ALTER TABLE utl.live_positions DROP CONSTRAINT live_positions_pkey;
ALTER TABLE utl.live_positions ADD PRIMARY KEY (landing, venue, account, asset);

ALTER TABLE utl.stream_quarantine DROP CONSTRAINT stream_quarantine_pkey;
ALTER TABLE utl.stream_quarantine ADD PRIMARY KEY (landing, stream_seq);

ALTER TABLE utl.stream_breaks DROP CONSTRAINT stream_breaks_pkey;
ALTER TABLE utl.stream_breaks ADD PRIMARY KEY (landing, business_date, venue, account, asset, what);
