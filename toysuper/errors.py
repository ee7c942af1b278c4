"""The errors toysuper raises for its users; a leaf module every layer may import."""


class ConfigError(ValueError):
    """A bad experiment file, override or results directory, worded for the user (exit status 2)."""


class TrainingError(RuntimeError):
    """A model's loss became non-finite; names the model and its settings."""


class OutputsError(TrainingError):
    """Training finished and the results are stored, but a derived table or figure could not
    be made on the diverged models among them (exit status 1, the results kept)."""
