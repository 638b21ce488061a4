"""awsctl: canary releases on AWS Application Load Balancers, driven from Kubernetes."""

__version__ = "0.1.0"
