"""moto_server with each request handled atomically.

moto's backends are not thread-safe: concurrent TransactWriteItems calls on
one table crash it with HTTP 500s (its rollback deep-copies the table while
another thread writes). Real DynamoDB applies each request atomically, so
this wrapper serializes requests behind one lock and otherwise runs moto's
own server. Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import copy
import threading

from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


_deepcopy = copy.deepcopy
_request_copies: dict[int, Table] = {}


def _deepcopy_table_once(obj, memo=None):
    """moto backs up a table once per *item* of a transaction, before any
    item is applied: every copy is identical, so one per request is enough
    (3x faster webhook transactions, same rollback)."""
    if isinstance(obj, Table) and memo is None:
        if id(obj) not in _request_copies:
            _request_copies[id(obj)] = _deepcopy(obj)
        return _request_copies[id(obj)]
    return _deepcopy(obj, memo)


copy.deepcopy = _deepcopy_table_once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            _request_copies.clear()
            try:
                return list(app(environ, start_response))
            finally:
                _request_copies.clear()

    run_simple(args.host, args.port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
