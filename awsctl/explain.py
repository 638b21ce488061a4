"""One line for each failure a person at the CLI can cause: what is wrong and what to do.

The CLI prints this line and exits non-zero instead of a traceback. Anything not recognised here
is a bug, and still gets a traceback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from awsctl.kube.client import ApiError


class CliError(Exception):
    """A failure already put into words (a missing Canary, a command the phase refuses)."""


def _kube_line(err: ApiError) -> str:
    message = err.message
    if err.status == 401:
        return (
            f"the Kubernetes API server did not accept the credentials ({message}): log in again "
            "(e.g. aws eks update-kubeconfig) or check KUBECONFIG"
        )
    if err.status == 403:
        return f"the Kubernetes API server refused: {message}; ask for the RBAC rights (kubectl auth can-i)"
    if err.status == 404 and "the server could not find the requested resource" in message:
        return "the awsctl CRDs are not installed in this cluster: kubectl apply -f crds/ (or helm install)"
    return f"the Kubernetes API server answered {err.status}: {message}"


def explain(err: BaseException) -> str | None:
    """The line to print for `err`, or None when it is not a failure the user can fix."""
    import kopf
    import urllib3
    from botocore import exceptions as aws

    from awsctl.kube.client import ApiError, Unreachable

    if isinstance(err, CliError):
        return str(err)
    if isinstance(err, kopf.LoginError):
        return (
            f"{err}. Set KUBECONFIG (or create ~/.kube/config, e.g. with aws eks update-kubeconfig), "
            "or run in a pod with a service account"
        )
    if isinstance(err, ApiError):
        return _kube_line(err)
    if isinstance(err, Unreachable | urllib3.exceptions.HTTPError):
        where = f" at {err.server}" if isinstance(err, Unreachable) else ""
        return (
            f"cannot reach the Kubernetes API server{where}: {_short(getattr(err, 'reason', err))}. Check "
            "the server in your kubeconfig (kubectl cluster-info) and that the cluster is up"
        )
    if isinstance(err, aws.NoCredentialsError | aws.PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give "
            "the pod an IAM role (IRSA or EKS Pod Identity)"
        )
    if isinstance(err, aws.NoRegionError):
        return "no AWS region: set AWS_REGION (e.g. export AWS_REGION=us-east-1)"
    if isinstance(err, aws.EndpointConnectionError | aws.ConnectTimeoutError | aws.ReadTimeoutError):
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        hint = f"AWS_ENDPOINT_URL is {endpoint}: is it right?" if endpoint else "check the network and AWS_REGION"
        return f"cannot reach AWS: {_short(err)}. {hint}"
    if isinstance(err, aws.ClientError):
        code = (err.response.get("Error") or {}).get("Code", "")
        message = (err.response.get("Error") or {}).get("Message", "")
        if code in (
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "ExpiredTokenException",
            "AuthFailure",
        ):
            return f"AWS did not accept the credentials ({code}: {message}): refresh them or check AWS_PROFILE"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"AWS refused {err.operation_name} ({message}): the IAM policy needs it (terraform/ has one)"
        return f"AWS refused {err.operation_name}: {code}: {message}"
    return None


def _short(err) -> str:
    """urllib3 and botocore wrap the reason in their own words; keep the first clause."""
    text = str(err)
    for marker in ("Failed to establish a new connection: ", "Could not connect to the endpoint URL: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.split("\n", 1)[0].strip(" ()\"'")[:200]
