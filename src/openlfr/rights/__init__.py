"""People's rights: requests (access, erasure, restriction, objection, complaint), the search by
face that answers them, and erasure that the audit log survives (crypto-shredding)."""
