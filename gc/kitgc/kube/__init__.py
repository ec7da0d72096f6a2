"""The Kubernetes API connection shared by the cluster reader, the state store and the Lease.

``connect`` builds the official client's ``ApiClient`` (in-cluster or kubeconfig); ``http``
sends raw JSON requests through it with the retry policy of :mod:`kitgc.retry`. Kept apart
from :mod:`kitgc.cluster` (what the cluster references) because the state store and the
Lease use the same connection for something else entirely.
"""
