import os
import sys
from pathlib import Path

# Qt must never try to open a real display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# tests/oracle.py and friends are importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
