"""Signal receivers of the listings app."""
