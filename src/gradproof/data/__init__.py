"""gradproof.data."""
