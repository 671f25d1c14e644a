"""(i) placeholder until the application API lands."""
