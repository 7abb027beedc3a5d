"""Readers of the annotation formats: UFO JSON, ICDAR/SROIE txt, label CSV and ImageFolder."""
