"""openlfr.store"""
