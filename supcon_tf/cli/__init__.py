"""The command line's library side: config schema, work directory, checkpoints, stages.

`supcon_tf/main.py` reads the flags and calls `session.prepare(Settings(...))`; every
module here takes explicit arguments, so runs can also be driven from Python.
"""


def say(message):
    """A run's progress line, flushed at once: a run killed later (a preempted machine's
    SIGKILL) keeps every line it printed in its log, not just what filled a buffer."""
    print(message, flush=True)
