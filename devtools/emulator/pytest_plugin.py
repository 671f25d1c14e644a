"""pytest fixtures that start the local emulator (filled in by the emulator work)."""
