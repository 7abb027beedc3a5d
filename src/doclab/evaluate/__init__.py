"""The `evaluate` stage: the trained detector (tuned post-processing) and the chosen ensemble on the test split."""
