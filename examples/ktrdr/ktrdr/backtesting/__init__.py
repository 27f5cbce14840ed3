"""Backtesting worker of the example."""
