"""User-facing errors.

Every mistake a user can make (a bad file, a wrong key, an impossible value)
raises a subclass of :class:`UserError`. Its message is one line that names the
file, key or atom at fault and says how to fix it. The CLI prints that line and
exits with code 2; internal bugs raise ordinary exceptions and keep their
tracebacks.
"""


class UserError(Exception):
    """A mistake in the user's input. The message is one line: the problem and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(UserError):
    """A malformed YAML file, an unknown or missing key, a wrong type or an out-of-range value."""


class DataError(UserError):
    """A dataset file that is missing, unreadable, inconsistent or lacks a requested property."""


class UnitError(UserError):
    """A unit string that cannot be parsed or does not fit the quantity it is attached to."""
