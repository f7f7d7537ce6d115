"""Progress of long step loops: a tqdm bar on a terminal, a plain line in a log.

Where stderr is a terminal, a loop shows a tqdm bar (left behind by nothing, as before). Where
it is not (a sweep writing to a log file, a pipe), one line goes to stderr, flushed, at most
every ``interval`` seconds and at least every ``interval`` seconds of stepping::

    isp round 2: step 120/399 (30%), 1.2 it/s, ETA 3m52s

The interval is shared by every loop of the process, so a log gets one line per interval
however short the loops are. In a Jupyter kernel (the book's chapters) the lines go to the
kernel process's own stderr (``sys.__stderr__``: the output of ``make book``, which started
the kernel), not into the notebook: a chapter's outputs stay what the book shows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from tqdm import tqdm

#: Seconds between two progress lines in a log.
INTERVAL_S = 30.0


def duration(seconds: float) -> str:
    """A short duration: ``45s``, ``4m10s``, ``2h05m``.

    >>> duration(250), duration(7500), duration(9.6)
    ('4m10s', '2h05m', '10s')
    """
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_line(label: str, step: int, total: int, rate: float) -> str:
    """The log line of a loop at ``step`` of ``total`` going at ``rate`` steps per second.

    >>> progress_line("isp round 2", 120, 399, 1.2)
    'isp round 2: step 120/399 (30%), 1.2 it/s, ETA 3m52s'
    """
    speed = f"{rate:.1f} it/s" if rate >= 1 else f"{1 / rate:.1f} s/it" if rate > 0 else "- it/s"
    eta = duration((total - step) / rate) if rate > 0 else "?"
    share = 100 * step / total if total else 100.0
    return f"{label}: step {step}/{total} ({share:.0f}%), {speed}, ETA {eta}"


def _in_kernel(stream: TextIO) -> bool:
    """Whether ``stream`` is a Jupyter kernel's output stream (ipykernel's ``OutStream``)."""
    return type(stream).__module__.split(".")[0] == "ipykernel"


class ProgressLog:
    """Reports the progress of step loops (see the module docstring).

    Args:
        interval: seconds between two lines in a log.
        stream: where to report; None: ``sys.stderr`` at the time of each loop.
        clock: seconds, monotonic (a test passes a fake one).
    """

    def __init__(self, interval: float = INTERVAL_S, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.stream = stream
        self.clock = clock
        self.last = clock()

    def steps(self, n: int, label: str, start: int = 0, total: int | None = None
              ) -> Iterator[int]:
        """Yield ``0 .. n-1``, one per step of a loop, reporting after each step.

        Args:
            n: steps of this loop.
            label: what the loop does (e.g. ``"isp round 2"``).
            start: steps already done towards ``total`` before this loop.
            total: the step count the loop works towards (default ``start + n``).

        Yields:
            The index of the step about to run.
        """
        stream = sys.stderr if self.stream is None else self.stream
        total = start + n if total is None else total
        if _in_kernel(stream):
            stream = sys.__stderr__
            if stream is None:
                yield from range(n)
                return
        elif stream.isatty():
            with tqdm(total=total, initial=start, desc=label, leave=False, file=stream) as bar:
                for i in range(n):
                    yield i
                    bar.update()
            return
        began = self.clock()
        for i in range(n):
            yield i
            now = self.clock()
            if now - self.last >= self.interval:
                rate = (i + 1) / (now - began) if now > began else 0.0
                print(progress_line(label, start + i + 1, total, rate), file=stream, flush=True)
                self.last = now


#: The process's progress reporter, used by :meth:`isp_lib.train.Trainer.train`.
PROGRESS = ProgressLog()
