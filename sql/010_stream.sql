-- 010_stream: real-time booking from the UTL_FILLS stream (contracts/stream.md).
-- One booker transaction per batch writes fills, legs, lots, positions and the offset.

CREATE TABLE utl.stream_offset (
    consumer    text COLLATE "C" PRIMARY KEY,
    last_seq    bigint NOT NULL,          -- the last stream sequence committed
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The ledger key of every fill received, booked or recorded only (exactly once).
CREATE TABLE utl.stream_fills (
    venue       text COLLATE "C" NOT NULL,
    account     text COLLATE "C" NOT NULL,
    symbol      text COLLATE "C" NOT NULL,
    trade_id    text COLLATE "C" NOT NULL,  -- the payload's id, as written
    stream_seq  bigint NOT NULL,
    ts          timestamptz NOT NULL,
    counted     boolean NOT NULL,           -- false: at or before its account's starting state
    PRIMARY KEY (venue, account, symbol, trade_id)
);

CREATE TABLE utl.stream_legs (
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    symbol        text COLLATE "C" NOT NULL,
    trade_id      text COLLATE "C" NOT NULL,  -- the payload's id (ledger key)
    leg_id        text COLLATE "C" NOT NULL,  -- as the batch names it (<venue trade id>/base|quote|fee)
    kind          text NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    qty           numeric NOT NULL,
    ts            timestamptz NOT NULL,
    business_date date NOT NULL,
    price         numeric,                    -- the fill's price (base legs)
    unit_price    numeric,                    -- in the reporting currency, as costed; null: not costed
    counted       boolean NOT NULL,
    stream_seq    bigint NOT NULL,
    -- A fill is one message: its legs are told apart by kind. Sequences grow, so the key
    -- appends; the ledger key itself is utl.stream_fills's, and legs go in only with a fill
    -- that went in there.
    PRIMARY KEY (stream_seq, kind)
);

-- Where each (venue, account) started: the EOD date, the opening snapshot, or zero.
CREATE TABLE utl.stream_start (
    venue       text COLLATE "C" NOT NULL,
    account     text COLLATE "C" NOT NULL,
    state_date  date,                        -- end of this date; null: from zero
    source      text NOT NULL,               -- eod | snapshot | zero
    PRIMARY KEY (venue, account)
);

-- Open lots now, per (book, asset).
CREATE TABLE utl.stream_lots (
    book        text COLLATE "C" NOT NULL,
    asset       text COLLATE "C" NOT NULL,
    trade_id    text COLLATE "C",
    opened_ts   timestamptz NOT NULL,
    qty         numeric NOT NULL,
    entry_price numeric NOT NULL
);
CREATE INDEX stream_lots_key ON utl.stream_lots (book, asset);

-- The lots each key held at the start of each date it traded (and its starting lots):
-- the end of date D of a key is its opening of the next such date, else its lots now.
CREATE TABLE utl.stream_lot_openings (
    business_date date NOT NULL,
    book        text COLLATE "C" NOT NULL,
    asset       text COLLATE "C" NOT NULL,
    trade_id    text COLLATE "C",
    opened_ts   timestamptz NOT NULL,
    qty         numeric NOT NULL,
    entry_price numeric NOT NULL
);
CREATE INDEX stream_lot_openings_key ON utl.stream_lot_openings (book, asset, business_date);

CREATE TABLE utl.stream_day_pnl (
    business_date date NOT NULL,
    venue        text COLLATE "C" NOT NULL,
    account      text COLLATE "C" NOT NULL,
    asset        text COLLATE "C" NOT NULL,
    realized_pnl numeric NOT NULL,
    PRIMARY KEY (business_date, venue, account, asset)
);

CREATE TABLE utl.live_positions (
    venue         text COLLATE "C" NOT NULL,
    account       text COLLATE "C" NOT NULL,
    asset         text COLLATE "C" NOT NULL,
    qty           numeric NOT NULL,
    cost_basis    numeric NOT NULL,
    avg_cost      numeric,                  -- null when flat
    realized_pnl  numeric NOT NULL,         -- since the starting state's end of day
    last_trade_ts timestamptz,
    stream_seq    bigint,                   -- the sequence of the last fill booked into the row
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, account, asset)
);

CREATE TABLE utl.stream_quarantine (
    subject     text NOT NULL,
    stream_seq  bigint PRIMARY KEY,
    reason      text NOT NULL,
    raw         text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Differences between the stream's end of a date and the EOD run's (the asset check
-- stream_agrees): one row per (venue, account, asset, what differs).
CREATE TABLE utl.stream_breaks (
    business_date date NOT NULL,
    subject      text NOT NULL DEFAULT 'stream',
    venue        text COLLATE "C" NOT NULL,
    account      text COLLATE "C" NOT NULL,
    asset        text COLLATE "C" NOT NULL,
    what         text NOT NULL,             -- qty | lots | realized_pnl
    stream_value text,
    eod_value    text,
    PRIMARY KEY (business_date, venue, account, asset, what)
);
