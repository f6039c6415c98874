"""Worker entry points, one per queue, so each pool can be scaled on its own."""
