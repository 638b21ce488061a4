"""Typed models of the CRDs. The CRD YAML in crds/ is generated from these (`make crds`)."""

GROUP = "awsctl.io"
VERSION = "v1alpha1"
