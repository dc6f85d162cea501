"""Ingest: what comes in from K-LMS (Keio's Canvas LMS): the submissions zip and its entry names
(``names``, ``submissions``), the roster (``roster``), a notebook read as data (``notebook``), and
``canvas_zip`` (writes a zip as K-LMS does, for the examples and the tests). The formats follow Canvas's own
source (``lib/content_zipper.rb``, ``app/models/gradebook_importer.rb``)."""
