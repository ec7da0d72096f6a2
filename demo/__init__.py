"""``make demo``: kitgc against a realistic Camel K scene on loopback (see demo/main.py).

The scene (``demo/scene.yaml``) is data, shared with ``tests/test_demo.py``.
"""
