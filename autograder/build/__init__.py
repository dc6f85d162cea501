"""Build: the student release and the solutions generated from the master notebook (``release``)."""
