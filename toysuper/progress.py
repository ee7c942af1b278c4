"""Progress bars on stderr for the long stages besides training: the `--plan` probe, derived
tables and figures, the report.

A bar shows where stderr is a terminal, once its stage has taken more than DELAY_S seconds,
unless its caller turns it off (`run --quiet`), as the training bar does (toysuper/engine.py).
The environment variable TOYSUPER_PROGRESS=1 shows the bars not turned off at once, wherever
stderr goes (a log file, a test); TOYSUPER_PROGRESS=0 hides them all.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

ENV = "TOYSUPER_PROGRESS"
DELAY_S = 2.0  # a stage done sooner than this draws nothing


def bar(total: int, desc: str, enabled: bool = True, unit: str = "") -> tqdm:
    """A tqdm bar over `total` items, closed by `with`; a no-op bar when not shown."""
    forced = os.environ.get(ENV)
    off = not enabled or forced == "0" or total == 0
    # disable=None: tqdm's own rule, shown only on a terminal
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=True if off else (False if forced == "1" else None),
                delay=0 if forced == "1" else DELAY_S)


def ticker(bar: tqdm):
    """A callback for each item done: counts it and names it beside the bar."""
    def tick(name: str) -> None:
        bar.update()
        bar.set_postfix_str(name, refresh=False)
    return tick
