"""Scripts that print the tables in the README. Run them from a clone with zoo installed, as modules:
``python -m benchmarks.headline``; none of them patches ``sys.path``."""
