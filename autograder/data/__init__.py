"""Data sets shared by the course's assignments: MNIST (fetched offline, checked by sha256) and the IDX format."""
