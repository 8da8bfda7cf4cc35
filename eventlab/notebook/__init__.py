"""Notebook views of the log: time travel, projection charts, log plots, a concurrency lab.

This package is the only part of eventlab that uses ipywidgets and matplotlib;
each view loads on first use, so ``import eventlab`` stays light.

>>> from eventlab.notebook import ConcurrencyLab
>>> ConcurrencyLab().winner
'A'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "TimeTravel": "timetravel_view",
    "ProjectionChart": "projection_chart",
    "animate_projection": "projection_chart",
    "plot_project_history": "projection_chart",
    "LogView": "logview",
    "ConcurrencyLab": "concurrency",
    "plot_events_over_time": "plots",
    "plot_type_counts": "plots",
    "plot_stream_lengths": "plots",
    "plot_swimlanes": "plots",
    "plot_dotted_chart": "plots",
    "plot_case_durations": "plots",
    "process_map": "process_maps",
    "plot_directly_follows": "process_maps",
    "plot_causation": "causation_chart",
    "plot_cqrs": "cqrs",
    "measure_lag": "cqrs",
    "plot_lag": "cqrs",
    "plot_fold": "lesson_charts",
    "plot_positions": "lesson_charts",
    "side_by_side": "lesson_charts",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'eventlab.notebook' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = list(_LAZY)
