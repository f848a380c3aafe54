"""Serve the real Keystone on loopback for the lab (run by the Keystone venv's python).

Usage: ``python keystone_serve.py KEYSTONE_CONF``. Keystone's WSGI application parses the
process's arguments as oslo.config options, so they are cleared before it loads; the port
is chosen by the system and printed for :class:`audit.labkit.LabProcess` to read.
"""

import os
import sys


def main() -> None:
    conf = sys.argv[1]
    sys.argv = sys.argv[:1]
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = conf
    from keystone.server import wsgi
    from werkzeug.serving import make_server

    application = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", 0, application, threaded=True)
    print(f"keystone listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
