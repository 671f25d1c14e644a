"""Development tooling beside the app, never deployed (see .funcignore).

The local Azure emulator, the local Functions host and the demo live here. The app never
imports this package.
"""
