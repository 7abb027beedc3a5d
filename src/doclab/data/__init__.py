"""Data sources, records and synthetic document generation."""
