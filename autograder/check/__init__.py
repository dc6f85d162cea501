"""Check: the trusted checking vocabulary (``vocabulary``: check_scalar, as_float, ...) and the runner of
otter test files (``runner``: parts, credits, helpers judged both ways). Generic: no assignment lives here."""
