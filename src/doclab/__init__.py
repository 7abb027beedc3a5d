"""doclab."""
