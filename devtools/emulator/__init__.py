"""keyward's local Azure emulator: Key Vault keys, the ARM calls keyward makes, Event Grid.

Dev tooling only: the app never imports it and ``.funcignore`` keeps it out of deployments.
"""
