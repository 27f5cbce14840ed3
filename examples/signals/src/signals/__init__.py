"""signals: scores a window of prices with a small linear model."""

__version__ = "0.3.1"
