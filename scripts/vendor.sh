#!/usr/bin/env bash
# Refresh the vendored front-end libraries from the npm registry.
# Nothing is fetched from a CDN at run time: a library's network may be closed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/biblioverse/web/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PICO=@picocss/pico@2.1.1
HTMX=htmx.org@2.0.11
SWAGGER=swagger-ui-dist@5.35.0
THREE=three@0.187.0
AXE=axe-core@4.14.1  # the browser tests' accessibility checker, not served to readers

fetch() {  # fetch PKG -> unpacked into $work/NAME
  local spec=$1 name=$2
  (cd "$work" && npm pack --silent "$spec" >/dev/null && mkdir -p "$name" && tar xzf ./*.tgz -C "$name" && rm ./*.tgz)
}

fetch "$PICO" pico
fetch "$HTMX" htmx
fetch "$SWAGGER" swagger
fetch "$THREE" three
fetch "$AXE" axe

mkdir -p "$dest/pico" "$dest/htmx" "$dest/swagger-ui" "$dest/three/addons/controls" "$dest/three/addons/webxr"
cp "$work/pico/package/css/pico.min.css" "$dest/pico/"
cp "$work/pico/package/LICENSE.md" "$dest/pico/LICENSE.md"
cp "$work/htmx/package/dist/htmx.min.js" "$dest/htmx/"
cp "$work/htmx/package/LICENSE" "$dest/htmx/LICENSE"
cp "$work/swagger/package/swagger-ui-bundle.js" "$work/swagger/package/swagger-ui.css" "$dest/swagger-ui/"
cp "$work/swagger/package/LICENSE" "$dest/swagger-ui/LICENSE"
# three.js as ES modules, loaded through the page's import map (no bundler)
cp "$work/three/package/build/three.module.js" "$work/three/package/build/three.core.js" "$dest/three/"
cp "$work/three/package/examples/jsm/controls/OrbitControls.js" "$dest/three/addons/controls/"
cp "$work/three/package/examples/jsm/webxr/VRButton.js" "$dest/three/addons/webxr/"
cp "$work/three/package/LICENSE" "$dest/three/LICENSE"
mkdir -p tests/e2e/vendor/axe-core
cp "$work/axe/package/axe.min.js" "$work/axe/package/LICENSE" tests/e2e/vendor/axe-core/
echo "vendored: $PICO $HTMX $SWAGGER $THREE $AXE"
