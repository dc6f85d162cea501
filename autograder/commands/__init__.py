"""One thin module per CLI verb (``add_arguments(parser)``, ``run(args)``) over the library functions of the
stages; ``autograder/__main__.py`` dispatches to them."""
