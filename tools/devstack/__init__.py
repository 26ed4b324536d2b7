"""The development and test stack launcher: `python -m tools.devstack run | exec -- CMD`. No Django."""
