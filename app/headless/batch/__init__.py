"""`masklet batch`: many videos tracked on Ray, one model per worker, resumable."""
