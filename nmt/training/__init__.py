"""Training a model: the Trainer (named steps around one loop), its optimisation pieces,
validation, divergence checks, RNG states and the metrics log."""
