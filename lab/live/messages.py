"""The messages between the page process and trainer workers (pickled over a socket pair)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.snapshot import Snapshot

# Command ops, page process -> worker:
#   add       args: spec (RunSpec), start (bool), weights (bytes | None), many (bool)   build a run (replaces one)
#   remove    drop the run                        remove_session   drop every run of `session`
#   play, pause, stop                             step   args: n
#   live      args: fields (dict of live config fields), max_steps, max_seconds, many
#   speed     args: rate (float | None)           job    args: name, kwargs; answered by a Reply
#   measure   args: spec, evaluate, kwargs; trains a run to its budget, answers with the evaluation
#   shutdown  the worker exits
OPS = (
    "add",
    "remove",
    "remove_session",
    "play",
    "pause",
    "stop",
    "step",
    "live",
    "speed",
    "job",
    "measure",
    "shutdown",
)


@dataclass(frozen=True)
class Command:
    op: str
    run_id: str = ""
    session: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # the pool's command count for this run (pictures older than a command keep its status)
    request: int = 0  # nonzero: the worker answers with a Reply of this id


@dataclass(frozen=True)
class Picture:
    """Worker -> page process: a run's new snapshot. Fields named in `reuse` were not redrawn (the
    density grid, the views, the histories) and are taken from the run's previous snapshot."""

    snapshot: Snapshot
    reuse: tuple[str, ...] = ()
    seq: int = 0


@dataclass(frozen=True)
class Reply:
    """Worker -> page process: the answer to a job or a measurement; `error` is one sentence."""

    request: int
    value: Any = None
    error: str = ""
