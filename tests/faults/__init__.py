"""The fault lab: network namespaces, a link shaper, workloads and a history checker (issue 22)."""
