"""Progress of step loops: a line per interval in a log, a bar on a terminal, nothing in a
kernel; and the trainer reports through it."""

from __future__ import annotations

import io
import math
import re
import sys

import pytest

from isp_lib import train
from isp_lib.progress import ProgressLog, duration, progress_line

LINE = re.compile(r"^(?P<label>.+): step (?P<step>\d+)/(?P<total>\d+) \((?P<share>\d+)%\), "
                  r"[\d.]+ (it/s|s/it), ETA (\d+s|\d+m\d\ds|\d+h\d\dm)$")


class FakeClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


KernelStream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})


@pytest.mark.parametrize("interval,step_s,n", [(5.0, 1.0, 23), (30.0, 0.7, 200),
                                               (0.5, 2.0, 7), (30.0, 1.0, 29)])
def test_a_log_gets_a_line_every_interval_naming_phase_and_step(interval, step_s, n):
    clock, log = FakeClock(), io.StringIO()
    progress = ProgressLog(interval=interval, stream=log, clock=clock)
    seen = []
    for i in progress.steps(n, "isp round 2", start=100, total=399):
        seen.append(i)
        clock.now += step_s
    assert seen == list(range(n))
    lines = log.getvalue().splitlines()
    every = math.ceil(interval / step_s)  # steps per line: the first step at or past interval
    assert len(lines) == n // every
    steps = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        assert m["label"] == "isp round 2" and m["total"] == "399"
        steps.append(int(m["step"]))
    assert steps == [100 + every * k for k in range(1, len(lines) + 1)]


def test_the_interval_spans_loops():
    clock, log = FakeClock(), io.StringIO()
    progress = ProgressLog(interval=10.0, stream=log, clock=clock)
    for loop in range(6):  # loops of 4 s each, shorter than the interval
        for _ in progress.steps(4, f"finetune {loop}"):
            clock.now += 1.0
    assert len(log.getvalue().splitlines()) == 24 // 10


def test_a_terminal_gets_a_bar_and_a_kernel_lines_on_its_process_stderr(monkeypatch):
    clock, term, kernel, process = FakeClock(), Terminal(), KernelStream(), io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", process)
    for stream in (term, kernel):
        progress = ProgressLog(interval=0.0, stream=stream, clock=clock)
        assert list(progress.steps(5, "finetune", start=3, total=20)) == list(range(5))
        clock.now += 60
    assert "finetune" in term.getvalue() and "3/20" in term.getvalue()  # tqdm draws once
    assert not LINE.search(term.getvalue().replace("\r", "\n"))
    assert kernel.getvalue() == ""  # the notebook's outputs stay clean
    lines = process.getvalue().splitlines()  # make book's output gets the lines
    assert lines and lines[-1].startswith("finetune: step 8/20 (40%)")
    monkeypatch.setattr(sys, "__stderr__", None)
    assert list(ProgressLog(0.0, kernel, clock).steps(2, "finetune")) == [0, 1]


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (59.4, "59s"), (60, "1m00s"),
                                          (250, "4m10s"), (3599, "59m59s"), (3600, "1h00m"),
                                          (90061, "25h01m"), (-3, "0s")])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("step,total,rate", [(1, 10, 0.05), (120, 399, 1.2), (399, 399, 30.0),
                                             (0, 5, 0.0)])
def test_progress_line_shape(step, total, rate):
    line = progress_line("look-ahead 3", step, total, rate)
    assert line.startswith(f"look-ahead 3: step {step}/{total} ")
    if rate > 0:
        assert LINE.match(line), line
        assert f"({100 * step / total:.0f}%)" in line


def test_trainer_reports_its_steps_towards_the_end_step(toy_ctx, tmp_path, monkeypatch):
    log_path = tmp_path / "sweep.log"
    with open(log_path, "w") as log:  # stderr redirected to a file, as a background sweep's
        monkeypatch.setattr(train, "PROGRESS", ProgressLog(interval=0.0, stream=log))
        trainer = toy_ctx.make_trainer("main")
        trainer.train(2, "train")
        trainer.train(3, "finetune", end=10)
    lines = log_path.read_text().splitlines()
    assert [(m["label"], m["step"], m["total"]) for m in map(LINE.match, lines)] == [
        ("train", "1", "2"), ("train", "2", "2"),
        ("finetune", "3", "10"), ("finetune", "4", "10"), ("finetune", "5", "10")]
