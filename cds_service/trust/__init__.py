"""Trusting CDS clients (CDS Hooks 2.0): JWT bearer tokens from allowlisted issuers."""

from .verify import AuthFailure, ClientIdentity, ClientVerifier

__all__ = ["AuthFailure", "ClientIdentity", "ClientVerifier"]
