"""The errors users see: bad input or bad configuration, said in one line, never a traceback.

`UserError` is what the CLI turns into `error: ...` and a non-zero exit. Anything else that
escapes is a bug.
"""


class UserError(Exception):
    """Bad input or configuration; the message names the file, line and field."""


class WarehouseError(UserError):
    """The warehouse cannot be opened, or a query failed."""


class BadLines(UserError):
    """Several bad lines of one file, found by checking it whole: the CLI prints one
    `error:` line per bad line (the first `MAX_REPORTED`), then the summary.

    >>> str(BadLines(["f:2: not valid JSON", "f:5: field 'x' is missing"], "f: 2 bad lines"))
    "f:2: not valid JSON\\nf:5: field 'x' is missing\\nf: 2 bad lines"
    """

    MAX_REPORTED = 20

    def __init__(self, lines: list[str], summary: str):
        shown = lines[: self.MAX_REPORTED]
        if len(lines) > len(shown):
            shown.append(f"... and {len(lines) - len(shown)} more bad line(s)")
        self.lines = [*shown, summary]
        super().__init__("\n".join(self.lines))
