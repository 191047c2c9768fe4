"""openlfr.matching"""
