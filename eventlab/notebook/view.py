"""The base of every view: a widget for live notebooks plus a static HTML fallback.

A view holds its ipywidgets tree in ``.widget`` and renders its current frame
as standalone HTML in ``render()``. Displaying a view offers both: JupyterLab
shows the live widget, a notebook read without a kernel or widget state shows
the HTML (with PNGs inlined).

>>> class Hello(View):
...     def render(self):
...         return "<b>hi</b>"
>>> Hello()._repr_mimebundle_()["text/html"]
'<b>hi</b>'
"""

from __future__ import annotations

from typing import Any


class View:
    """Shared display plumbing; subclasses set ``self.widget`` and define ``render()``."""

    widget: Any = None

    def render(self) -> str:
        """The current frame as standalone HTML."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                          **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": f"<{type(self).__name__}>"}
        widget_repr = getattr(self.widget, "_repr_mimebundle_", None)
        if callable(widget_repr):   # None once the widget is closed
            bundle.update(widget_repr(**kwargs) or {})
        bundle["text/html"] = self.render()
        return bundle

    def close(self) -> None:
        """Close the widgets (their views disappear from the notebook)."""
        stack = [self.widget] if self.widget is not None else []
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            widget.close()
