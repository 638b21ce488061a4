"""boto3 adapter: translates between AWS responses and the planning types. No decisions here."""
