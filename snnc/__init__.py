"""snnc."""
