"""Parsed configs are cached per process tree in a throwaway folder, never in the user's cache."""

import os
import tempfile

os.environ.setdefault("OKR_CACHE_DIR", tempfile.mkdtemp(prefix="okr-test-cache-"))
