"""Thin AWS adapters shared by the Lambda handlers (S3 objects, worker statistics in DynamoDB).

Everything algorithmic lives in the pure packages beside this one; this package only moves bytes.
"""
