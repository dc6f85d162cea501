"""The course: one grading folder per assignment (``lec03/``), read by ``autograder.assignment``."""
