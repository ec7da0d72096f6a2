"""Where Camel K keeps the container trait's image, in every form it has stored it.

Facts from Camel K's source (apache/camel-k):

- ``pkg/apis/camel/v1/trait/container.go``: the container trait's ``image`` property.
- ``pkg/apis/camel/v1/common_types.go``: ``TraitAnnotationPrefix = "trait.camel.apache.org/"``;
  ``pkg/trait/util.go`` ``ExtractAndMaybeDeleteTraits`` turns such annotations into traits, and
  its ``extractAsArray`` reads a value in the array notation ``["a","b"]`` as several values.
- ``pkg/apis/camel/v1/pipe_types.go``: a Pipe has ``spec.traits`` (since 2.9, where
  ``kamel bind --trait`` now writes, ``pkg/cmd/bind.go``) and the deprecated
  ``spec.integration`` (an IntegrationSpec, with its own ``traits``); up to 2.8 ``kamel bind``
  wrote the annotations. 1.x KameletBindings (``camel.apache.org/v1alpha1``) have
  ``spec.integration.traits`` (where 1.x ``kamel bind`` wrote) and the annotations.
- ``pkg/controller/pipe/integration.go``: up to 2.3 a Pipe's annotations were copied onto its
  Integration as they are (``pkg/trait/trait_configure.go`` applies them there); from 2.4 they
  become the Integration's ``spec.traits``.
- Camel K 1.x before typed traits wrote ``container.configuration.image``.

Pure functions yielding (field path, raw value) pairs, for :mod:`kitgc.cluster.extract`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kitgc.cluster.raw import get as _get

CONTAINER_IMAGE_ANNOTATION = "trait.camel.apache.org/container.image"


def container_images(obj: Any, *path: str) -> Iterator[tuple[str, Any]]:
    """The container trait's image in the traits at ``path`` (e.g. ``spec.traits``)."""
    where = ".".join(path)
    yield f"{where}.container.image", _get(obj, *path, "container", "image")
    yield f"{where}.container.configuration.image", _get(obj, *path, "container", "configuration", "image")


def annotation_images(obj: Any) -> Iterator[tuple[str, Any]]:
    """The ``trait.camel.apache.org/container.image`` annotation; in the array notation, each value."""
    value = _get(obj, "metadata", "annotations", CONTAINER_IMAGE_ANNOTATION)
    path = f"metadata.annotations[{CONTAINER_IMAGE_ANNOTATION}]"
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        yield path, value
        return
    for i, part in enumerate(value[1:-1].split(",")):
        part = part.strip()
        yield f"{path}[{i}]", part[1:-1] if len(part) > 1 and part[0] == part[-1] == '"' else part


def binding_images(obj: Any) -> Iterator[tuple[str, Any]]:
    """Pipe, KameletBinding: the annotation, ``spec.traits`` and ``spec.integration.traits``."""
    yield from annotation_images(obj)
    yield from container_images(obj, "spec", "traits")
    yield from container_images(obj, "spec", "integration", "traits")
