"""(j) placeholder until the application API lands."""
