"""The retirement campaign: seeded random scenarios against real stores on Azurite.

``python -m tests.campaign --scenarios 500 --seed 11`` runs the full campaign (see
docs/reliability.md); ``tests/campaign/test_campaign.py`` runs a small seeded slice in
``make test``.
"""
