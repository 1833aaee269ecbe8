"""Exit codes of the `riskiturva` commands: one meaning each, the same in every command.

A cron job or a CI step can tell a good run (0) from a run that could not check anything
(1), a mistake in the command line or the configuration (2), a result past the threshold
it asked about (3) and a run stopped by a signal (130). docs/cli.md is generated from
`MEANINGS`. When several apply, the highest in `PRECEDENCE` wins: a run that was
interrupted or failed says so even if the threshold was also reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskiturva.runner import RunReport


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    THRESHOLD = 3
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: every run finished and checked something; no threshold reached",
    ExitCode.FAILED: "a run failed or checked nothing (every target an error: name server down,"
    " resolver unreachable, nmap broken); `score --fail-below`: an organisation never checked;"
    " `alerts send|test|retry`: a message failed for good; or the database or a collector"
    " could not be opened",
    ExitCode.USAGE: "invalid command line or configuration (nothing was run); click's own usage"
    " errors are 2 as well",
    ExitCode.THRESHOLD: "the run was good and the threshold asked for was reached: `scan"
    " --fail-on` (an open finding at or above the severity) or `score --fail-below` (a grade"
    " below it)",
    ExitCode.INTERRUPTED: "stopped by SIGINT (Ctrl-C) or SIGTERM: the run is recorded as"
    " interrupted; organisations it had not finished resolved nothing",
}

# A few words each, for the commands' --help (the table above is in docs/cli.md).
SUMMARIES: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "a run failed or checked nothing",
    ExitCode.USAGE: "invalid usage or configuration",
    ExitCode.THRESHOLD: "threshold reached",
    ExitCode.INTERRUPTED: "interrupted",
}

# Most telling first: a scan that was stopped, or that failed, is not judged by its threshold.
# (A usage error stops a command before anything runs, so it never competes.)
PRECEDENCE = (ExitCode.INTERRUPTED, ExitCode.FAILED, ExitCode.THRESHOLD)


def combined(codes: Iterable[ExitCode]) -> ExitCode:
    """The one code to exit with when several outcomes apply."""
    found = set(codes)
    return next((code for code in PRECEDENCE if code in found), ExitCode.OK)


def scan_exit_code(reports: Sequence[RunReport], *, threshold_reached: bool) -> ExitCode:
    """`riskiturva scan`: INTERRUPTED when a run was stopped; FAILED when a run failed (one
    that checked none of its targets has failed) or no run checked anything at all; then
    THRESHOLD when `--fail-on` found an open finding that severe; else OK."""
    from riskiturva.models import RunStatus

    codes = {ExitCode.THRESHOLD} if threshold_reached else set()
    for report in reports:
        if report.status == RunStatus.INTERRUPTED:
            codes.add(ExitCode.INTERRUPTED)
        elif report.status == RunStatus.FAILED:
            codes.add(ExitCode.FAILED)
    if not any(report.checked for report in reports):
        codes.add(ExitCode.FAILED)
    return combined(codes)


def score_exit_code(grades: Iterable[tuple[str, bool]], *, fail_below: str | None) -> ExitCode:
    """`riskiturva score`, from each organisation's (grade, checked): with `--fail-below`,
    FAILED when an organisation was never checked (its grade proves nothing), THRESHOLD
    when a grade is below the threshold; else OK."""
    from riskiturva.scoring import grade_floor

    if fail_below is None:
        return ExitCode.OK
    codes = set()
    for grade, checked in grades:
        if not checked:
            codes.add(ExitCode.FAILED)
        elif grade_floor(grade) < grade_floor(fail_below):
            codes.add(ExitCode.THRESHOLD)
    return combined(codes)
