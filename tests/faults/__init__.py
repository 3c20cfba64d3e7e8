"""The fault lab (issue 22): faults across real network boundaries."""
