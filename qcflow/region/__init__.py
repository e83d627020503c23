"""Regional mode (docs/region.md): a hospital's qcflow sends its signed monthly indicator values and annual and
quarterly forms to its quality-control centre (质控中心); the same software installed at the centre
(INSTALLATION_ROLE = "centre") receives them from every hospital and compares them. A centre never stores
patient-level data."""
