"""Onboarding a county (issue 14): its area tree from the national code list, its grids and users,
and its household roster, read from the files it already keeps (CSV, .xlsx) and written through the
engine. docs/onboarding.md is the guide."""
