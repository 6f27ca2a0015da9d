"""pybsp's version, in a module of its own so that any module may name it
without importing the package (and with it everything else)."""

__version__ = "0.1.0"
