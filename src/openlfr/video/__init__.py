"""openlfr.video"""
