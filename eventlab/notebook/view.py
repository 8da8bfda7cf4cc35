"""The base of every view: a widget for live notebooks, a static HTML fallback, snapshots.

A view holds its ipywidgets tree in ``.widget`` and renders its current frame
as standalone HTML in ``render()``. Displaying a view offers both: JupyterLab
shows the live widget, a notebook read without a kernel or widget state shows
the HTML (with PNGs inlined). One live widget shown in several cells shows
its latest frame in all of them; ``snapshot()`` freezes the current frame
instead, so a cell that shows one step keeps showing that step.

>>> class Hello(View):
...     step = 1
...     def render(self):
...         return f"<b>step {self.step}</b>"
>>> view = Hello()
>>> view._repr_mimebundle_()["text/html"]
'<b>step 1</b>'
>>> frozen = view.snapshot()
>>> view.step = 2
>>> "step 1" in frozen._repr_html_(), frozen
(True, <snapshot of <Hello>>)
"""

from __future__ import annotations

import html as _html
from typing import Any


class Snapshot:
    """One frame of a view frozen as static HTML (PNGs inlined): later changes to the
    view leave it alone. Displays as that HTML, with a one-line text summary."""

    def __init__(self, html: str, text: str) -> None:
        self.html, self.text = html, text

    def _repr_html_(self) -> str:
        return self.html

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                          **kwargs: Any) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


class View:
    """Shared display plumbing; subclasses set ``self.widget`` and define ``render()``."""

    widget: Any = None

    def render(self) -> str:
        """The current frame as standalone HTML."""
        raise NotImplementedError

    def snapshot(self) -> Snapshot:
        """The current frame, frozen: display it in a cell that shows one step, and it
        keeps showing that step whatever later cells do to the view."""
        text = f"<snapshot of {self!r}>"
        return Snapshot(f'<div class="el-snapshot" title="{_html.escape(text)}">'
                        f"{self.render()}</div>", text)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                          **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        widget_repr = getattr(self.widget, "_repr_mimebundle_", None)
        if callable(widget_repr):   # None once the widget is closed
            bundle.update(widget_repr(**kwargs) or {})
        bundle["text/plain"] = repr(self)   # the view, not its widget tree
        bundle["text/html"] = self.render()
        return bundle

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def close(self) -> None:
        """Close the widgets (their views disappear from the notebook)."""
        stack = [self.widget] if self.widget is not None else []
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            widget.close()
