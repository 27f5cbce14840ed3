"""Configuration files shipped inside the package (logging_config.json)."""
