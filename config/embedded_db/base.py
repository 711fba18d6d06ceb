"""The Django backend of the embedded default: PostgreSQL's, starting the server on demand."""

from typing import Any

import psycopg
from django.db.backends.postgresql import base

from config.embedded_db import Server, attach


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: Any) -> Any:
        server = Server.from_settings(self.settings_dict)
        attach(server)
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError:
            # Stopped under this process (`python -m config.embedded_db stop`): start it again.
            attach(server, recheck=True)
            return super().get_new_connection(conn_params)
