"""Tamper-evident audit log: SHA-256 hash chain, verification and export."""

from openlfr.audit.chain import GENESIS, EventRecord, VerifyResult, append, verify, verify_records
from openlfr.audit.export import export_chain, verify_export

__all__ = ["GENESIS", "EventRecord", "VerifyResult", "append", "export_chain", "verify", "verify_export",
           "verify_records"]
