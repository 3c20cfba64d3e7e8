"""The fault lab (issue 22, ADR 0029): network namespaces, a link shaper, workloads and a
history checker."""
