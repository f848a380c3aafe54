"""Check families shipped with Rempart: ``ports``, ``tls`` and ``aws``.

Each family is a package exposing ``FAMILY`` (an :class:`audit.plugins.CheckFamily`),
registered through the ``rempart.checks`` entry-point group like any third party's.
"""
