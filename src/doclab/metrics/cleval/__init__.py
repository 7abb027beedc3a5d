"""CLEval (Baek et al. 2020): see docs/cleval.md for the facts the code cites."""
