"""The command line's library side: config schema, work directory, checkpoints, stages.

`supcon_tf/main.py` reads the flags and calls `session.prepare(Settings(...))`; every
module here takes explicit arguments, so runs can also be driven from Python.
"""
