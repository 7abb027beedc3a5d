"""Ensembles of classifier members: fitting, applying, and scoring on the test split."""
