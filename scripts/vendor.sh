#!/usr/bin/env bash
# Copies pinned front-end libraries from the npm registry into static/vendor/,
# with their licence files, so that the app runs offline (workshop rooms).
# Run it again after changing a version below; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  "htmx.org@2.0.11:dist/htmx.min.js"
  "sortablejs@1.15.7:Sortable.min.js"
  "uplot@1.6.32:dist/uPlot.iife.min.js dist/uPlot.min.css"
  "swagger-ui-dist@5.35.0:swagger-ui-bundle.js swagger-ui.css"
  "prismjs@1.30.0:components/prism-core.min.js components/prism-python.min.js themes/prism.min.css"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p static/vendor
for entry in "${PACKAGES[@]}"; do
  spec=${entry%%:*}
  file=${entry#*:}
  name=${spec%@*}
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  mkdir -p "$work/unpacked"
  tar -xzf "$tarball" -C "$work/unpacked"
  dest="static/vendor/$name"
  rm -rf "$dest"
  mkdir -p "$dest"
  for one in $file; do cp "$work/unpacked/package/$one" "$dest/"; done
  cp "$work/unpacked/package/"LICEN[CS]E* "$dest/" 2>/dev/null || true
  echo "$spec" > "$dest/VERSION"
  rm -rf "$work/unpacked" "$tarball"
  echo "vendored $spec -> $dest"
done
