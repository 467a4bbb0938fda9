"""gradproof.train."""
