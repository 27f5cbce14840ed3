"""HTTP API of the example (the image's default command serves ktrdr.api.main:app)."""
