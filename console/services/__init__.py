"""Use cases over the domain and the adapter protocols (never a concrete client)."""
