"""Frontend models for tests, benchmarks and the demo; not loaded by the extension.

``widget_frontend`` applies the widget messages a kernel publishes as a widget
manager does and records what the page would see; ``server_client`` runs a
real ``jupyter server`` and talks to its kernels over the websocket as
JupyterLab does (it needs ``websocket-client``, in the ``test`` extra).
"""
