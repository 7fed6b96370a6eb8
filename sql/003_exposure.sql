-- 003_exposure: what a risk manager reads in the morning, per date (utl.exposure).
-- Values are in the reporting currency; a group with nothing priced has null values.

CREATE TABLE utl.exposure_asset (
    business_date  date NOT NULL,
    asset          text COLLATE "C" NOT NULL,
    net_qty        numeric NOT NULL,
    net_value      numeric,
    gross_value    numeric,
    long_value     numeric,
    short_value    numeric,
    share_of_gross numeric,   -- of the day's gross over priced positions; null when that is 0
    positions      bigint  NOT NULL,
    -- unpriced: a position without a mark: its value is null, never 0
    unpriced       boolean NOT NULL,
    PRIMARY KEY (business_date, asset)
);

CREATE TABLE utl.exposure_venue (
    business_date  date NOT NULL,
    venue          text COLLATE "C" NOT NULL,
    net_value      numeric,
    gross_value    numeric,
    long_value     numeric,
    short_value    numeric,
    share_of_gross numeric,   -- of the day's gross over priced positions; null when that is 0
    positions      bigint  NOT NULL,
    -- unpriced: a position without a mark: its value is null, never 0
    unpriced       boolean NOT NULL,
    PRIMARY KEY (business_date, venue)
);

CREATE TABLE utl.exposure_book (
    business_date  date NOT NULL,
    book           text COLLATE "C" NOT NULL,
    net_value      numeric,
    gross_value    numeric,
    long_value     numeric,
    short_value    numeric,
    share_of_gross numeric,   -- of the day's gross over priced positions; null when that is 0
    positions      bigint  NOT NULL,
    -- unpriced: a position without a mark: its value is null, never 0
    unpriced       boolean NOT NULL,
    PRIMARY KEY (business_date, book)
);
