"""The one error type the command line turns into exit status 2 and a message."""


class UsageError(ValueError):
    """Bad input found before training starts: a config, a flag or a work directory."""
