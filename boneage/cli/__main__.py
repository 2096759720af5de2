"""``python -m boneage.cli STEP ...`` (what child processes and tests call)."""

from boneage.cli import main

main()
