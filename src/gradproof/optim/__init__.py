"""gradproof.optim."""
