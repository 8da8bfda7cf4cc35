"""Exercise checking for the course notebooks.

Each exercise cell starts as a stub that raises ``NotImplementedError``.
``attempt(check, answer)`` runs a check on the learner's answer: an untouched
stub is reported as "not attempted" (so a notebook still runs top to bottom),
a wrong answer fails with the reason, a right one prints a tick.

>>> def check(fn):
...     assert fn(2) == 4, "double 2 should be 4"
>>> attempt(check, lambda x: x * 2)
✓ correct
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def attempt(check: Callable[..., Any], *answer: Any) -> None:
    """Run ``check(*answer)``: say so if the answer is still a stub, raise if it is wrong."""
    try:
        check(*answer)
    except AssertionError as wrong:
        raise AssertionError(f"Not quite: {wrong}") from None
    except Exception as problem:
        if not _unfinished(problem):
            raise
        print("Not attempted yet: replace the NotImplementedError with your code, run that "
              "cell, then this one. (The solution is in the hidden cell below.)")
        return
    print("✓ correct")


def _unfinished(problem: BaseException | None) -> bool:
    """Whether ``problem`` is, or was caused by, a stub's ``NotImplementedError``.

    Library code may wrap it (a projector raises ``ApplyError`` from it).
    """
    seen = set()
    while problem is not None and id(problem) not in seen:
        if isinstance(problem, NotImplementedError):
            return True
        seen.add(id(problem))
        problem = problem.__cause__ or problem.__context__
    return False
