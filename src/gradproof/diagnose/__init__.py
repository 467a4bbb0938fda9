"""gradproof.diagnose."""
