"""The web layer's request machinery: auth, rate limits, the request log, metrics, logging,
the flask-smorest Api and the JSON provider. Shared by the API and the console."""
