"""What K-LMS (Keio's Canvas LMS) writes and reads: zip entry names, the gradebook CSV, the roster.

The formats follow Canvas's own source (``lib/content_zipper.rb``, ``app/models/gradebook_importer.rb``);
see ``names``, ``csvfmt`` and ``roster``. The REST client lives in ``autograder.publish.upload``.
"""
