"""Signal receivers of the installs app."""
