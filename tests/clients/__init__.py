"""Stock Redis clients against any endpoint: one script per client, and the pytest side."""
