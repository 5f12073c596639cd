"""Cloud entry points: each function behind an SQS queue trigger (AWS Lambda), the web side
behind API Gateway. The functions and the pipeline table are the same as locally."""
