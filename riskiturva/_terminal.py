"""Terminal safety: nothing the CLI prints can reach the terminal as a control sequence.

Scanned targets choose their own DNS records, certificate fields and banners; an ESC or a
C1 control in one could move the cursor, rewrite what was printed or set the window title.
Every way the CLI writes is covered, so no command can forget it:

- `protect_standard_streams()` (called for every command) wraps `sys.stdout` and
  `sys.stderr`: `click.echo`, JSON and CSV output pass `printable()` on the way out;
- `console()` gives a rich console that writes to the real stream (its own colours and
  progress bars stay), with a render hook that passes the *text* of every renderable
  through `printable()` before rich adds its styles.

Control characters become `\\uXXXX`: still visible, and valid inside JSON strings (they
decode to the same text), so machine output keeps its meaning.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, RenderableType, RenderHook, RenderResult
from rich.segment import Segment

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides
# and isolates that make text display in another order than it is stored.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character written as a `\\uXXXX` escape."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class SafeStream(io.TextIOBase):
    """A text stream that writes `printable(text)` to the stream it wraps."""

    def __init__(self, raw: TextIO):
        self.raw = raw

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.raw.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.raw, "errors", None)


def protect_standard_streams() -> None:
    """Wrap `sys.stdout` and `sys.stderr` in `SafeStream` (once)."""
    if not isinstance(sys.stdout, SafeStream):
        sys.stdout = SafeStream(sys.stdout)
    if not isinstance(sys.stderr, SafeStream):
        sys.stderr = SafeStream(sys.stderr)


def _raw(stream: TextIO) -> TextIO:
    return stream.raw if isinstance(stream, SafeStream) else stream


class _Printable:
    """A renderable whose text segments are made printable after rich laid them out."""

    def __init__(self, renderable: RenderableType):
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.renderable, options):
            if segment.control:  # rich's own cursor movements (progress bars)
                yield segment
            else:
                yield Segment(printable(segment.text), segment.style)


class _PrintableHook(RenderHook):
    def process_renderables(self, renderables: Iterable[RenderableType]) -> list[Any]:
        return [_Printable(renderable) for renderable in renderables]


def console(*, stderr: bool = False, **options: Any) -> Console:
    """A rich console on standard output (or error) that prints only printable text."""
    stream = _raw(sys.stderr if stderr else sys.stdout)
    terminal = Console(file=stream, **options)
    terminal.push_render_hook(_PrintableHook())
    return terminal
