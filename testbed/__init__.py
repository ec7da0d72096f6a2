"""The testbed: everything the collector is exercised against, on loopback, without a cluster.

- real servers started on 127.0.0.1 and always stopped again (:mod:`testbed.servers`): a
  Distribution registry (:mod:`testbed.registry_server`, plain, TLS with basic auth, or with
  the token issuer of :mod:`testbed.token_issuer`), a Prometheus Pushgateway
  (:mod:`testbed.pushgateway`), and a fault-injecting proxy in front of the registry
  (:mod:`testbed.faultproxy`);
- the Kubernetes API emulator (:mod:`testbed.kubeapi` over :mod:`testbed.kubestore`) that the
  real ``kubernetes`` client talks to, with injectable faults;
- builders of Kubernetes objects and registry images (:mod:`testbed.objects`,
  :mod:`testbed.images`, :mod:`testbed.planfactory`);
- scenes: whole worlds of kits, images and workloads with their expected outcome
  (:mod:`testbed.world`, :mod:`testbed.scene`, :mod:`testbed.operator_sim`).

It is a package of its own, not part of ``tests``, because three users share it: the test
suite (its pytest fixtures are registered in ``tests/conftest.py``), the benchmark
(``python -m bench``) and the demo (``python -m demo``). All of them run from the repository
root, which is how ``testbed`` is found (pytest: ``pythonpath = ["."]``); it is never shipped
in the wheel or the image.
"""
