"""gradproof.adapters."""
