"""Readers that cache a results directory by its path forget it when a run rewrites it."""

from pathlib import Path

from toysuper import sources, starts, store

INTRO = Path(__file__).resolve().parents[1] / "results" / "intro"


def test_rewriting_a_directory_forgets_what_was_read_of_it(tmp_path):
    sources.stored(str(INTRO))
    starts._kept(str(INTRO))
    assert sources.stored.cache_info().currsize and starts._kept.cache_info().currsize
    store.write_results(tmp_path, {}, {}, {}, {})  # any run's last write
    assert sources.stored.cache_info().currsize == 0
    assert starts._kept.cache_info().currsize == 0
