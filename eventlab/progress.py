"""Progress bars for long imports and copies: live while the work runs, honest once saved.

In a Jupyter kernel the bar is one plain-text output redrawn in place
(IPython's ``update_display``), so a saved notebook keeps its last state: when
the work is done, a final "100% ... done" line; when it failed, where it
stopped. No widget is used, so nothing is left behind that needs a live kernel
or saved widget state to show. Elsewhere (a terminal, the command line) it is
tqdm's bar on stderr, removed when done unless asked to stay (``leave=True``).
Either way it appears only once the work has taken ``delay`` seconds (``DELAY``
by default).

>>> bar = Progress(2_000_000, "reading log.xes", unit="B", unit_scale=True)
>>> bar.update(2_000_000)
>>> line = bar.text(done=True)
>>> line[:45], line[-4:]
('reading log.xes: 100%|██████████| 2.00M/2.00M', 'done')
>>> bar.close()
"""

from __future__ import annotations

import sys
import time
from typing import Any

#: Seconds of work before a bar appears (quick work shows none).
DELAY = 1.0
_REDRAW = 0.2               # seconds between two redraws of a notebook bar


def in_kernel() -> bool:
    """True when running in a Jupyter kernel (where outputs are saved with the notebook)."""
    if "IPython" not in sys.modules:            # not imported: certainly no kernel
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A progress bar over ``total`` units (``None``: unknown), labelled ``desc``.

    ``update(n)`` advances by ``n``, ``advance_to(done)`` sets how many are
    done, ``describe(text)`` relabels it, ``close()`` ends it (also as a
    context manager). ``finished`` (settable) labels the final line of work
    that finished (default: the label at that time). ``leave``: a terminal
    keeps the bar's last line too. ``shown=False`` makes every call a no-op.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it",
                 unit_scale: bool = False, delay: float | None = None,
                 shown: bool = True, finished: str | None = None,
                 leave: bool = False) -> None:
        self.total, self.desc, self.n = total or None, desc, 0
        self.finished = finished
        self.unit, self.unit_scale = unit, unit_scale
        self.delay = DELAY if delay is None else delay
        self.shown, self.closed = shown, False
        self._began = time.monotonic()
        self._handle: Any = None                 # the notebook output, once drawn
        self._drawn_at = 0.0
        self._terminal: Any = None
        if shown and not in_kernel():
            from tqdm.std import tqdm

            self._terminal = tqdm(total=self.total, desc=desc, unit=unit, unit_scale=unit_scale,
                                  delay=self.delay, leave=leave, file=sys.stderr)
        self._draw()

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.advance_to(self.n + n)

    def advance_to(self, done: int) -> None:
        """``done`` units done in all."""
        if self._terminal is not None:
            self._terminal.update(done - self._terminal.n)
        self.n = done
        self._draw()

    def describe(self, text: str) -> None:
        """Relabel the bar (a new stage of the work)."""
        self.desc = text
        if self._terminal is not None:
            self._terminal.set_description_str(text, refresh=False)
        self._draw()

    def text(self, done: bool | None = None) -> str:
        """The bar as one line of text; ``done=True``: the final line of finished work
        (100%), ``done=False``: of work that stopped."""
        from tqdm.std import tqdm

        n = self.total if done and self.total else self.n
        meter = tqdm.format_meter(n, self.total, self._elapsed(),
                                  prefix=self.desc, unit=self.unit, unit_scale=self.unit_scale)
        if done is None:
            return meter
        if done and not self.total:
            return f"{self.desc}: 100% done [{tqdm.format_interval(self._elapsed())}]"
        return meter + (" done" if done else " stopped")

    def close(self, done: bool | None = None) -> None:
        """End the bar: a notebook keeps its final line (``done``: the work finished;
        by default, unless an exception is on its way out), a terminal clears it."""
        if self.closed or not self.shown:
            return
        self.closed = True
        if done is None:
            done = sys.exc_info()[0] is None
        if done and self.finished:
            self.describe(self.finished)
        if self._terminal is not None:
            self._terminal.close()
        elif self._handle is not None:
            self._handle.update({"text/plain": self.text(done)}, raw=True)
        elif self._elapsed() >= self.delay:      # long work, but no redraw came after the delay
            from IPython.display import display

            display({"text/plain": self.text(done)}, raw=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.close(done=kind is None)

    def _elapsed(self) -> float:
        return time.monotonic() - self._began

    def _draw(self) -> None:
        if not self.shown or self._terminal is not None or self.closed:
            return
        now = time.monotonic()
        if self._handle is None:
            if now - self._began < self.delay:
                return
            from IPython.display import display

            self._handle = display({"text/plain": self.text()}, raw=True, display_id=True)
        elif now - self._drawn_at >= _REDRAW:
            self._handle.update({"text/plain": self.text()}, raw=True)
        else:
            return
        self._drawn_at = now
