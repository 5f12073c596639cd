"""Deploying the cloud functions: the SAM template and the build of one artifact per function."""
