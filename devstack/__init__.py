"""The development and test stack launcher: `python -m devstack run | exec -- CMD`. No Django."""
