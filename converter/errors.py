"""Errors wconv raises, each with the CLI exit code it maps to.

The table is documented in the README (a test keeps the two in step).
"""

from __future__ import annotations

from contextlib import contextmanager

EXIT_CODES = {
    0: "success: converted, or the two models match",
    1: "validation mismatch: the models disagree beyond tolerance",
    2: "bad input: missing, unreadable, corrupt or wrong-format file; shapes or weights that do not fit",
    3: "unsupported: a layer, op or attribute wconv cannot convert faithfully",
    4: "output refused: exists (use --force), or is the input file itself",
    5: "missing framework: install the named pip extra",
    70: "internal error: a bug in wconv (rerun with --debug and report it)",
    130: "interrupted (Ctrl-C)",
    141: "the reader of the output closed the pipe (as in `wconv inspect m.onnx | head`)",
}
PIPE_CLOSED = 141
INTERNAL_ERROR = 70


class WconvError(Exception):
    """Base class: a one-line message for people, an exit code for the CLI."""

    exit_code = 2


class BadInput(WconvError):
    exit_code = 2


class ShapeMismatch(BadInput):
    """A tensor whose shape does not fit where it must go: never reshaped silently."""


class WeightMismatch(BadInput):
    """Weights missing from the file, or present but unused by the architecture."""


class Unsupported(WconvError):
    exit_code = 3


class UnsupportedLayers(Unsupported):
    """Layers wconv cannot convert, with the reader's listing of every layer (name, type, the problem or None), so
    that ``inspect`` can still show the whole model."""

    def __init__(self, message: str, listing: list[tuple[str, str, str | None]] = ()):
        super().__init__(message)
        self.listing = list(listing)

    @classmethod
    def of(cls, problems: list[str], listing) -> UnsupportedLayers:
        return cls(f"{len(problems)} unsupported layer(s): {', '.join(problems)}", listing)


class OutputRefused(WconvError):
    exit_code = 4


class MissingFramework(WconvError):
    exit_code = 5


class ValidationMismatch(WconvError):
    exit_code = 1


class ParseSetupFailed(WconvError):
    """The limited child that parses an input could not be set up: wconv's failure on this machine, not the
    file's (which was never read)."""

    exit_code = 70


MESSAGE_LIMIT = 2000  # characters of one error line; a file's 100 MB string is quoted no further


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters, saying how much was left out."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def quoted(name, limit: int = 120) -> str:
    """A name from a file, quoted for an error message and cut to ``limit`` characters."""
    text = str(name)
    return repr(text if len(text) <= limit else f"{text[:limit]}...")


def first_line(error: Exception) -> str:
    """The first line of a framework's error message, for one-line reports."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


@contextmanager
def about(path):
    """Name ``path`` once at the front of any WconvError raised inside."""
    try:
        yield
    except WconvError as error:
        if str(error).startswith(f"{path}:"):
            raise
        named = type(error)(f"{path}: {error}")
        named.__dict__.update(error.__dict__)  # what an error carries besides its message (a layer listing)
        raise named from None
