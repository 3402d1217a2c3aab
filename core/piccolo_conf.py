"""piccolo's configuration module (PICCOLO_CONF points here).

`DB` and `APP_REGISTRY` are set by `core.db.configure` from the settings and the loaded
plugins; piccolo's own machinery (migrations, `engine_finder`) reads them from here.
"""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

DB: Engine | None = None
APP_REGISTRY = AppRegistry(apps=["core.piccolo_app"])
