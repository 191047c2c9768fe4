"""openlfr.audit"""
