"""The table of everything in the cluster the collector reads, and what it may write.

One table drives the reader, the RBAC manifests' test and the docs, so the ClusterRole can
never drift from what the code actually calls.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A resource listed cluster-wide. ``optional`` APIs (Knative, Pipes, KameletBindings, OpenShift's)
    may be absent."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    optional: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """Cluster-wide list path."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.group_version} {self.plural}"


CAMEL = "camel.apache.org"
KNATIVE = "serving.knative.dev"
OPENSHIFT_APPS = "apps.openshift.io"
OPENSHIFT_BUILD = "build.openshift.io"
OPENSHIFT_IMAGE = "image.openshift.io"

PODS = Source("", "v1", "pods", "Pod")
DEPLOYMENTS = Source("apps", "v1", "deployments", "Deployment")
REPLICASETS = Source("apps", "v1", "replicasets", "ReplicaSet")
STATEFULSETS = Source("apps", "v1", "statefulsets", "StatefulSet")
DAEMONSETS = Source("apps", "v1", "daemonsets", "DaemonSet")
JOBS = Source("batch", "v1", "jobs", "Job")
CRONJOBS = Source("batch", "v1", "cronjobs", "CronJob")
REPLICATION_CONTROLLERS = Source("", "v1", "replicationcontrollers", "ReplicationController")
KNATIVE_SERVICES = Source(KNATIVE, "v1", "services", "Service", optional=True)
KNATIVE_CONFIGURATIONS = Source(KNATIVE, "v1", "configurations", "Configuration", optional=True)
KNATIVE_REVISIONS = Source(KNATIVE, "v1", "revisions", "Revision", optional=True)
INTEGRATIONS = Source(CAMEL, "v1", "integrations", "Integration")
PIPES = Source(CAMEL, "v1", "pipes", "Pipe", optional=True)  # Camel K >= 2.0
KAMELET_BINDINGS = Source(CAMEL, "v1alpha1", "kameletbindings", "KameletBinding", optional=True)  # 1.x to 2.5
INTEGRATION_KITS = Source(CAMEL, "v1", "integrationkits", "IntegrationKit")
INTEGRATION_PLATFORMS = Source(CAMEL, "v1", "integrationplatforms", "IntegrationPlatform")
INTEGRATION_PROFILES = Source(CAMEL, "v1", "integrationprofiles", "IntegrationProfile", optional=True)
BUILDS = Source(CAMEL, "v1", "builds", "Build")
# OpenShift (kitgc.cluster.openshift_refs): served on OpenShift only.
DEPLOYMENT_CONFIGS = Source(OPENSHIFT_APPS, "v1", "deploymentconfigs", "DeploymentConfig", optional=True)
BUILD_CONFIGS = Source(OPENSHIFT_BUILD, "v1", "buildconfigs", "BuildConfig", optional=True)
IMAGE_STREAMS = Source(OPENSHIFT_IMAGE, "v1", "imagestreams", "ImageStream", optional=True)

# Every source is read on every run: a source that cannot be read completely aborts the
# pass (exit 3), except an optional API that the server does not serve at all.
SOURCES: tuple[Source, ...] = (
    PODS,
    DEPLOYMENTS,
    REPLICASETS,
    STATEFULSETS,
    DAEMONSETS,
    JOBS,
    CRONJOBS,
    REPLICATION_CONTROLLERS,
    KNATIVE_SERVICES,
    KNATIVE_CONFIGURATIONS,
    KNATIVE_REVISIONS,
    INTEGRATIONS,
    PIPES,
    KAMELET_BINDINGS,
    INTEGRATION_KITS,
    INTEGRATION_PLATFORMS,
    INTEGRATION_PROFILES,
    BUILDS,
    DEPLOYMENT_CONFIGS,
    BUILD_CONFIGS,
    IMAGE_STREAMS,
)

READ_VERBS = ("get", "list")


@dataclass(frozen=True)
class Write:
    """A write the collector makes; ``namespaced`` writes get a Role, not the ClusterRole."""

    group: str
    plural: str
    verbs: tuple[str, ...]
    namespaced: bool  # True: only in the collector's own namespace (state, lease)


WRITES: tuple[Write, ...] = (
    Write(CAMEL, "integrationkits", ("delete",), namespaced=False),
    Write("", "configmaps", ("get", "create", "update"), namespaced=True),
    Write("coordination.k8s.io", "leases", ("get", "create", "update"), namespaced=True),
)
