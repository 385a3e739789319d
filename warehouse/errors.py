"""The errors users see: bad input or bad configuration, said in one line, never a traceback.

`UserError` is what the CLI turns into `error: ...` and a non-zero exit. Anything else that
escapes is a bug.
"""


class UserError(Exception):
    """Bad input or configuration; the message names the file, line and field."""


class WarehouseError(UserError):
    """The warehouse cannot be opened, or a query failed."""
