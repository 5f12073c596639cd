"""Adapters on AWS services reached through boto3 (which the Lambda runtime provides)."""
