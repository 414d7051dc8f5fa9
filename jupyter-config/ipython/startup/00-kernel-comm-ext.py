# kernel-comm-ext: load the extension into every Jupyter kernel of this environment.
#
# `pip install kernel-comm-ext` puts this file in {sys.prefix}/etc/ipython/startup/
# and `pip uninstall` removes it; IPython runs it in every shell of that prefix.
# Turn it off with KERNEL_COMM_EXT_AUTOLOAD=0 or c.KernelCommManager.autoload = False;
# `python -m kernel_comm_ext status` says what applies.
#
# It runs in the user's namespace, before other startup files that a raise would
# skip: so it binds no names and never raises. In a terminal IPython it does nothing.
try:
    if getattr(__import__("IPython").get_ipython(), "kernel", None) is not None:
        __import__("importlib").import_module("kernel_comm_ext.autoload").load_into(
            __import__("IPython").get_ipython()
        )
except Exception:
    with __import__("contextlib").suppress(Exception):
        __import__("IPython").get_ipython().kernel.log.error(
            "kernel-comm-ext: auto-enable failed", exc_info=True
        )
