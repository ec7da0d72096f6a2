"""Image stores: where kit images live, behind one protocol (:class:`base.ImageStore`).

The pass lists, scans and deletes through this seam only, so a registry that must untag
before it deletes, one that lists through a vendor API, or OpenShift's ImageStreams can
each be served by an implementation of their own. ``distribution`` is the registry HTTP
API v2 as the Distribution registry implements it.
"""
