"""Image stores that list or delete through a vendor's REST API, over a v2 store for reading."""
