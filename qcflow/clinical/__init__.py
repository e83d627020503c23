"""Clinical facts from the HIS: patients, encounters, operations, cancer diagnoses, reference data."""
