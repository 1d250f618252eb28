"""`DataError`: a loader's error whose fix is one of the loader's own arguments.

The library message names the argument (`to_rgb=True`); the command line renders
the same error with the config key that sets it (`--config.dataset.to_rgb=True`),
so neither names an option its reader cannot pass.
"""


class Text(str):
    """A value shown as it is (a placeholder such as DIR), not quoted."""

    def __repr__(self):
        return str(self)


class DataError(ValueError):
    """`problem`, then each fix: (argument, value, what it does), then `notes`."""

    def __init__(self, problem, fixes=(), notes=""):
        self.problem, self.fixes, self.notes = problem, tuple(fixes), notes
        super().__init__(self.render())

    def render(self, option=None, **context):
        """The message, with each fix's argument written by `option(argument, value,
        **context)` (default: `argument=value`, as the loader takes it)."""
        option = option or (lambda argument, value: f"{argument}={value!r}")
        parts = [self.problem]
        parts += [f"Pass {option(argument, value, **context)} {why}."
                  for argument, value, why in self.fixes]
        return " ".join(parts + ([self.notes] if self.notes else []))
