"""The Bybit, Coinbase and Deribit CSV readers give, on seeded odd files, exactly the rows,
values and quarantine rows they gave before they were made faster (``odd_files.py``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from odd_files import FORMATS, SEEDS, frozen_inputs, frozen_path, input_digest, odd_file, read


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", FORMATS)
def test_reader_output_is_as_frozen_before_the_speedups(name: str, seed: int, tmp_path: Path) -> None:
    path = odd_file(tmp_path, name, seed)
    # The bench generators make the files: if they change, the frozen output no longer
    # belongs to these inputs (refreeze it with readers known to be right, not the new ones).
    assert input_digest(path) == frozen_inputs()[f"{name}-{seed}"], "the odd file differs from the one the output was frozen from"
    got = read(path, name)
    frozen = sorted(p.name.rsplit("-", 1)[1].removesuffix(".parquet") for p in frozen_path(name, seed, "x").parent.glob(f"{name.replace('.', '_')}-{seed}-*.parquet"))
    assert sorted(got) == frozen
    for frame_name, frame in got.items():
        expected = pl.read_parquet(frozen_path(name, seed, frame_name))
        assert_frame_equal(frame, expected, check_exact=True)


def test_the_odd_files_have_refused_and_booked_rows() -> None:
    # The frozen output is only a check if the files exercise both outcomes in every format.
    for name in FORMATS:
        for seed in SEEDS:
            assert pl.read_parquet(frozen_path(name, seed, "quarantine")).height > 50
            assert pl.read_parquet(frozen_path(name, seed, "frame")).height > 500
