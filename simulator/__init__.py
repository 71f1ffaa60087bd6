"""The medical-insurance simulator (medical-insurance.yaml over insurance_sim.*)."""
