"""The error an import raises: it names the file, the line (or row) and the column."""

from __future__ import annotations

from ..errors import EventlabError


class LogImportError(EventlabError, ValueError):
    """A log could not be imported; nothing was written.

    >>> str(LogImportError("receipt.csv, line 7: column 'time:timestamp' is empty"))
    "receipt.csv, line 7: column 'time:timestamp' is empty"
    """
