"""Training worker of the example."""
