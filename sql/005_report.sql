-- 005_report: the break report's fate per run, and the asset checks the report lists
-- (contract: ../shared/contracts/report.md). A run that completed but whose report could
-- not be sent keeps its tables; the failure is recorded here and `utl report` sends it later.

ALTER TABLE utl.runs
    ADD COLUMN report_status text
        CHECK (report_status IN ('sent', 'not_sent', 'failed', 'no_smtp')),
    ADD COLUMN report_error   text,         -- why sending failed; never holds a password
    ADD COLUMN report_sent_at timestamptz;  -- when the SMTP server accepted it

-- One row per (date, check): the latest result of each Dagster asset check for that date.
CREATE TABLE utl.check_results (
    business_date date NOT NULL,
    check_name    text COLLATE "C" NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('error', 'warn')),
    passed        boolean NOT NULL,
    description   text,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_date, check_name)
);
