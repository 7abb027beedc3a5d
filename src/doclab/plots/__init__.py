"""PNG and JSON figures of the tune, ensemble and evaluate stages (matplotlib, no torch)."""
