"""CDS Hooks 2.0 service: dupilumab failure in atopic dermatitis and next-line therapy."""

__version__ = "0.1.0"
