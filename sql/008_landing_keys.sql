-- 008_landing_keys: each landing folder's results stay apart in one database (issue 12).
--
-- Until now one embedded database per landing kept them apart, but two landing folders run
-- into one shared server (UTL_DATABASE_URL) wrote the same per-date rows: a run of landing B
-- on a date replaced landing A's rows of that date, and the break history mixed them. Every
-- per-date result table now carries the landing it belongs to, named as utl.day_runs and
-- utl.runs name it (the landing folder's absolute path), first in its key: a run replaces
-- its own landing's slice of a date and nothing else.
--
-- Rows written before this migration were written by whichever landing wrote their date
-- last (a date's write replaced every row of that date): utl.day_runs says which. Where no
-- run recorded the date, the landing last written into the database (else the last run's)
-- owns them; with no run on record at all, '' (no landing's command shows them). A landing
-- whose rows of a date were overwritten by another one loses its utl.day_runs row for that
-- date, so its next run writes the date again instead of trusting rows that are gone.

CREATE TEMP TABLE landing_of_date ON COMMIT DROP AS
SELECT DISTINCT ON (business_date) business_date, landing
FROM utl.day_runs
ORDER BY business_date, written_at DESC, landing;

CREATE TEMP TABLE last_landing ON COMMIT DROP AS
SELECT coalesce(
    (SELECT landing FROM utl.day_runs ORDER BY written_at DESC, business_date DESC LIMIT 1),
    (SELECT landing FROM utl.runs WHERE landing IS NOT NULL ORDER BY run_id DESC LIMIT 1),
    '') AS landing;

DELETE FROM utl.day_runs d
USING landing_of_date o
WHERE o.business_date = d.business_date AND o.landing <> d.landing;

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['positions', 'breaks', 'cleared_breaks', 'pnl', 'pnl_explain', 'exposure_asset',
                                'exposure_venue', 'exposure_book', 'quarantine', 'reconciled', 'check_results']
    LOOP
        EXECUTE format('ALTER TABLE utl.%I ADD COLUMN landing text COLLATE "C"', name);
        EXECUTE format('UPDATE utl.%I t SET landing = o.landing FROM landing_of_date o '
                       'WHERE o.business_date = t.business_date', name);
        -- Undated quarantine rows too: each run rewrote them whole, so the last one's.
        EXECUTE format('UPDATE utl.%I SET landing = (SELECT landing FROM last_landing) WHERE landing IS NULL', name);
        EXECUTE format('ALTER TABLE utl.%I ALTER COLUMN landing SET NOT NULL', name);
    END LOOP;
END
$$;

ALTER TABLE utl.positions DROP CONSTRAINT positions_pkey;
ALTER TABLE utl.positions ADD PRIMARY KEY (landing, business_date, venue, account, asset);

ALTER TABLE utl.breaks DROP CONSTRAINT breaks_pkey;
ALTER TABLE utl.breaks ADD PRIMARY KEY (landing, business_date, venue, account, asset);
DROP INDEX utl.breaks_by_age;
DROP INDEX utl.breaks_by_value;
CREATE INDEX breaks_by_age ON utl.breaks (landing, business_date, first_seen);
CREATE INDEX breaks_by_value ON utl.breaks (landing, business_date, abs(diff_value) DESC NULLS LAST);

ALTER TABLE utl.cleared_breaks DROP CONSTRAINT cleared_breaks_pkey;
ALTER TABLE utl.cleared_breaks ADD PRIMARY KEY (landing, business_date, venue, account, asset);

ALTER TABLE utl.pnl DROP CONSTRAINT pnl_pkey;
ALTER TABLE utl.pnl ADD PRIMARY KEY (landing, business_date, book, asset);
DROP INDEX utl.pnl_by_asset;
CREATE INDEX pnl_by_asset ON utl.pnl (landing, asset, business_date);

ALTER TABLE utl.pnl_explain DROP CONSTRAINT pnl_explain_pkey;
ALTER TABLE utl.pnl_explain ADD PRIMARY KEY (landing, business_date, book);

ALTER TABLE utl.exposure_asset DROP CONSTRAINT exposure_asset_pkey;
ALTER TABLE utl.exposure_asset ADD PRIMARY KEY (landing, business_date, asset);

ALTER TABLE utl.exposure_venue DROP CONSTRAINT exposure_venue_pkey;
ALTER TABLE utl.exposure_venue ADD PRIMARY KEY (landing, business_date, venue);

ALTER TABLE utl.exposure_book DROP CONSTRAINT exposure_book_pkey;
ALTER TABLE utl.exposure_book ADD PRIMARY KEY (landing, business_date, book);

ALTER TABLE utl.reconciled DROP CONSTRAINT reconciled_pkey;
ALTER TABLE utl.reconciled ADD PRIMARY KEY (landing, business_date, venue, account);

ALTER TABLE utl.check_results DROP CONSTRAINT check_results_pkey;
ALTER TABLE utl.check_results ADD PRIMARY KEY (landing, business_date, check_name);

DROP INDEX utl.quarantine_by_file;
DROP INDEX utl.quarantine_by_date;
CREATE INDEX quarantine_by_file ON utl.quarantine (landing, file);
CREATE INDEX quarantine_by_date ON utl.quarantine (landing, business_date);

-- One row per unbroken run of breaks of a landing's key: open while cleared_on is null.
DROP VIEW utl.break_history;
CREATE VIEW utl.break_history AS
SELECT b.landing, b.venue, b.account, b.asset, b.first_seen, max(b.business_date) AS last_seen,
       c.business_date AS cleared_on
FROM utl.breaks b
LEFT JOIN utl.cleared_breaks c USING (landing, venue, account, asset, first_seen)
GROUP BY b.landing, b.venue, b.account, b.asset, b.first_seen, c.business_date;
