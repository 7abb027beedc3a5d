"""The DVC stages, one module each: each `stages/<name>.py` calls the one function of `pipeline/<name>.py`."""
