"""User-facing errors: one line, no traceback, a definite exit code."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input or environment, shown as one line.

    ``exit_code`` follows the run convention: 1 = a check failed / bad input,
    2 = could not run (missing binary, port clash, lab not up).
    """

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
