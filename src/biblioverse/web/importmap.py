"""The import map of the 3D library's ES modules. The pages' Content-Security-Policy allows
no inline script, so the map (which a browser reads only inline) is allowed by its hash."""

from __future__ import annotations

import base64
import hashlib

IMPORT_MAP = (
    '{"imports": {"three": "/static/vendor/three/three.module.js", '
    '"three/addons/": "/static/vendor/three/addons/"}}'
)
IMPORT_MAP_HASH = (
    "'sha256-" + base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode() + "'"
)
