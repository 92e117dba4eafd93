"""The console's screens: overview, timeline, help."""
