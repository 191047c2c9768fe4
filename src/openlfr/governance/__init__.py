"""openlfr.governance"""
