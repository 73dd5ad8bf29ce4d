"""Run localstripe on the loopback interface only, keeping its data in memory.

``localstripe``'s own command listens on every interface (``::``) and pickles its
whole store to the shared file /tmp/localstripe.pickle after every write, which
two test runs at once (SQLite and PostgreSQL) would trample. This launcher binds
127.0.0.1 and turns the disk copy off; everything else is localstripe as shipped.

    python tests/stripe/localstripe_server.py PORT
"""

import logging
import sys

from aiohttp import web
from localstripe import resources

resources.Store.dump_to_disk = lambda self: None  # in memory only: no shared /tmp file

from localstripe import server  # noqa: E402  (after the patch above)


def main() -> None:
    port = int(sys.argv[1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=logging.getLogger("aiohttp.access"),
                print=None)


if __name__ == "__main__":
    main()
