"""The progress line `check` keeps updating on stderr while a sweep runs in ranges."""

from __future__ import annotations

from typing import TextIO

from alerts import Clock


class ProgressLine:
    """One line, rewritten in place after each range: `consistency sweep: 3/10 ranges, 30%, 4.2 s`.

    Silent unless the stream is a terminal, so scripts and pipes that read stderr see exactly
    what they saw before; silent too for evaluations that are not split into ranges.
    """

    def __init__(self, stream: TextIO, clock: Clock, database: str | None = None) -> None:
        self.stream = stream
        self.clock = clock
        self.prefix = f"{database}: " if database else ""  # named when there are several
        self.enabled = _is_terminal(stream)
        self._started: dict[str, float] = {}
        self._open = False

    def __call__(self, checks: tuple[str, ...], name: str, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        now = self.clock.monotonic()
        started = self._started.setdefault(name, now)
        percent = 100 * done // total
        line = f"{self.prefix}{name}: {done}/{total} ranges, {percent}%, {now - started:.1f} s"
        # \r back to the line's start, then the text, then erase what a longer line left.
        self.stream.write(f"\r{line}\x1b[K")
        self._open = done < total
        if not self._open:
            self.stream.write("\n")
            del self._started[name]
        self.stream.flush()

    def close(self) -> None:
        """End a line a failed sweep left open, so the next output starts on its own line."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False
