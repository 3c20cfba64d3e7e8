"""The operator's and developer's tools: they import the daemon's packages, never the reverse."""
