-- 002_pnl: daily PnL per (book, asset) and its explain per book, in the reporting currency.
-- total_pnl of the explain = market_value_end - market_value_start - external_flows, and
-- realized_pnl + unrealized_change - fees + income + trade_residual + unexplained = total_pnl.

CREATE TABLE utl.pnl (
    business_date      date NOT NULL,
    book               text COLLATE "C" NOT NULL,
    asset              text COLLATE "C" NOT NULL,
    realized_pnl       numeric NOT NULL,
    unrealized_pnl     numeric NOT NULL,
    unrealized_change  numeric NOT NULL,
    fees               numeric NOT NULL,
    income             numeric NOT NULL,
    trade_residual     numeric NOT NULL,
    external_flows     numeric NOT NULL,
    market_value_start numeric NOT NULL,
    market_value_end   numeric NOT NULL,
    total_pnl          numeric NOT NULL,
    PRIMARY KEY (business_date, book, asset)
) PARTITION BY RANGE (business_date);

CREATE TABLE utl.pnl_default PARTITION OF utl.pnl DEFAULT;

CREATE TABLE utl.pnl_explain (
    business_date      date NOT NULL,
    book               text COLLATE "C" NOT NULL,
    market_value_start numeric NOT NULL,
    market_value_end   numeric NOT NULL,
    external_flows     numeric NOT NULL,
    realized_pnl       numeric NOT NULL,
    unrealized_change  numeric NOT NULL,
    fees               numeric NOT NULL,
    income             numeric NOT NULL,
    trade_residual     numeric NOT NULL,
    total_pnl          numeric NOT NULL,
    unexplained        numeric NOT NULL,
    PRIMARY KEY (business_date, book),
    CHECK (total_pnl = market_value_end - market_value_start - external_flows)
);

CREATE INDEX pnl_by_asset ON utl.pnl (asset, business_date);
