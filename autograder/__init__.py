"""Sandboxed autograder for lecture 3 of 機械学習基礎 (Fundamentals of Machine Learning), Keio University."""
