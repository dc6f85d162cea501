"""Running student code where it can do no harm: ``jail`` (namespaces, limits), ``session`` (the parent side)
and ``child/`` (the only grader files the child can see: the harness and the wire protocol)."""
