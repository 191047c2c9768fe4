"""openlfr.face"""
