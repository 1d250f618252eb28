"""The errors the command line turns into an exit status and one paragraph.

Exit statuses: 2 bad input (`UsageError`, raised before any training), 3 a NaN or
infinite loss, 4 a failed write (`WriteFailedError`: a full disk, a lost mount),
130 Ctrl-C. After 3, 4 and 130 the newest checkpoint is intact and the same command
resumes from it.
"""

EXIT_USAGE = 2
EXIT_NON_FINITE = 3
EXIT_WRITE_FAILED = 4
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad input found before training starts: a config, a flag or a work directory."""


class WriteFailedError(OSError):
    """Writing `path` failed (`reason`: e.g. 'No space left on device'); what was on disk
    before the write is intact and no temporary file is left."""

    def __init__(self, path, reason):
        super().__init__(f"Writing {path} failed: {reason}.")
        self.path = str(path)
        self.reason = reason
