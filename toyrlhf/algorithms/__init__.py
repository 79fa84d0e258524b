"""Learning algorithms, one per file (see each module docstring for its equations)."""
