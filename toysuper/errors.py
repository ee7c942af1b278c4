"""The errors toysuper raises for its users; a leaf module every layer may import."""


class ConfigError(ValueError):
    """A bad experiment file, override or results directory, worded for the user (exit status 2)."""


class TrainingError(RuntimeError):
    """A model's loss became non-finite; names the model and its settings."""
