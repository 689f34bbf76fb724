"""User-facing errors: one line, no traceback, a definite exit code."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input or environment, shown as one line.

    ``exit_code`` follows the run convention (0 pass, 1 a check failed, 2 could not
    run): an error of input or environment means the command could not do its job, so
    it is 2 unless the raiser says otherwise.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
