"""The settle asset's wallet from the futures account replies, as ``balances/D.json``
(derivatives.md, "Reconciliation": Binance ``/fapi/v2/account`` ``walletBalance``, Deribit
``private/get_account_summary`` ``balance``: the cash wallet, unrealized PnL excluded).

Fixtures follow the venues' API references field for field: Binance USDⓈ-M Futures "Account
Information V2 (USER_DATA)" (``GET /fapi/v2/account``: ``assets[].walletBalance``,
``unrealizedProfit``, ``marginBalance``), Deribit API v2 ``private/get_account_summary``
(``result.currency``, ``balance``, ``equity``; numbers as JSON numbers).
"""

from __future__ import annotations

import shutil
from decimal import Decimal as D
from pathlib import Path

import polars as pl

from utl.ingest import ingest_landing

FIXTURES = Path(__file__).parent / "fixtures"
DAY = "2024-03-05"


def land(tmp_path: Path, rel: str, fixture: str | None = None, text: str | None = None) -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if fixture:
        shutil.copy(FIXTURES / fixture, path)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def balances(ingested) -> list[tuple]:
    return ingested.balances.sort("venue", "account", "asset").select("venue", "account", "asset", "total").rows()


def test_binance_futures_account_reply_gives_the_wallet_balance_not_the_margin_balance(tmp_path):
    # USDT: walletBalance 23.72469206 (marginBalance 25.22469206 adds the unrealized 1.5: not
    # the wallet); USDC listed at zero.
    land(tmp_path, f"binance/fut/balances/{DAY}.json", "binance_futures_account.json")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.files.filter(pl.col("kind") == "balances")["format"].to_list() == ["binance.futures_account"]
    assert balances(ingested) == [("binance", "fut", "USDC", D(0)), ("binance", "fut", "USDT", D("23.72469206"))]


def test_deribit_account_summary_reads_its_json_numbers_exactly(tmp_path):
    # balance 0.50109304 (a JSON number: read as its text, never a float); equity 0.50111304
    # adds the session's unrealized 0.00002 and is not the wallet.
    land(tmp_path, f"deribit/main/balances/{DAY}.json", "deribit_get_account_summary.json")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.files.filter(pl.col("kind") == "balances")["format"].to_list() == ["deribit.account_summary"]
    assert balances(ingested) == [("deribit", "main", "BTC", D("0.50109304"))]


def test_deribit_summaries_and_the_bare_result_are_read_too(tmp_path):
    # get_account_summaries: result.summaries, one per currency; a file holding just the result.
    land(tmp_path, f"deribit/a/balances/{DAY}.json",
         text='{"jsonrpc": "2.0", "result": {"id": 7, "summaries": ['
              '{"currency": "BTC", "balance": 1.25, "equity": 1.3}, {"currency": "ETH", "balance": 0, "equity": 0}]}}')
    land(tmp_path, f"deribit/b/balances/{DAY}.json",
         text='{"currency": "ETH", "balance": 2.000000000000000001, "equity": 2.1, "available_funds": 2}')
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert balances(ingested) == [("deribit", "a", "BTC", D("1.25")), ("deribit", "a", "ETH", D(0)),
                                  ("deribit", "b", "ETH", D("2.000000000000000001"))]


def test_an_unreadable_wallet_balance_is_quarantined_never_zero(tmp_path):
    # Row 1's walletBalance is not a decimal, row 2 has none: both refused, naming the key;
    # row 3 books.
    land(tmp_path, f"binance/fut/balances/{DAY}.json",
         text='{"totalWalletBalance": "1", "assets": [{"asset": "USDT", "walletBalance": "1O.5"}, '
              '{"asset": "BNB", "unrealizedProfit": "0"}, {"asset": "USDC", "walletBalance": "7"}]}')
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.sort("row").select("row", "column").rows() == [(1, "walletBalance"), (2, "walletBalance")]
    assert balances(ingested) == [("binance", "fut", "USDC", D(7))]


def test_the_wallet_reconciles_the_settle_asset_and_funding_absent_from_fills_shows_as_a_break():
    # A fills-only account: +2 @ 100, -1 @ 250 realizes 1·(250 − 100) = 150 USDT, computed
    # (a USDT leg): the ledger holds 1000 + 150 = 1150 USDT. The venue's wallet (its futures
    # account reply, walletBalance) says 1148.5: the funding of −1.5 no fill states. Balance
    # break on USDT: diff = 1148.5 − 1150 = −1.5; the position itself agrees (no position break).
    from tests.derivatives.daybook import D1, LINEAR, balances as wallet, fills, first_day, instrument_marks

    _, out = first_day(derivative_fills=fills(D1, "+2 @ 100", "-1 @ 250"),
                       marks_today=instrument_marks(D1, **{LINEAR: "250"}),
                       snapshot=wallet(D1, USDT="1148.5", BTC="1"))
    [brk] = out.breaks.to_dicts()
    assert (brk["asset"], brk["subject"], brk["ledger_qty"], brk["venue_qty"], brk["diff"]) == (
        "USDT", "balance", D(1150), D("1148.5"), D("-1.5"))
