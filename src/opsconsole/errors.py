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


def validation_message(exc: Exception, where: bool = True) -> str:
    """The first problem of a ``pydantic.ValidationError``, in words (no "Value error,"
    prefix, no link to the pydantic docs), after the field's name unless ``where`` is
    false (the caller names it)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", exc)).removeprefix("Value error, ")
    return f"{field}: {msg}" if field and where else msg
