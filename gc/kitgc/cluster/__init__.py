"""The Kubernetes side: what the cluster references, where Camel K pushes, kit deletion.

``sources`` is the table of what is read; ``extract`` turns raw objects into references
(pure); ``reader`` lists cluster-wide and builds the snapshot; ``discovery`` finds the
registry from IntegrationPlatforms. The API connection itself is :mod:`kitgc.kube`'s.
"""
