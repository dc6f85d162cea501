"""Data the assignment uses: the classroom CO2 set and MNIST (fetched offline, checked by sha256)."""
