#!/usr/bin/env bash
# Downloads the vendored GraphiQL page assets again, at the versions pinned here, from the npm
# registry, and checks them against SHA256SUMS. The server embeds these files (see
# ledger-api/src/http/graphiql.rs), so the GraphiQL page needs no internet access.
#
#   ./refresh.sh          re-download, then check: a changed tarball fails the check
#   ./refresh.sh --update re-download and rewrite SHA256SUMS (after changing a version here)
#
# graphiql 3.9.0 is the last 3.x release; its UMD build (graphiql.min.js) works with React 18
# and bundles graphql-js and the graphql-ws client that subscriptions use.
set -euo pipefail
cd "$(dirname "$0")"

GRAPHIQL=3.9.0
REACT=18.3.1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() { # package version
    local tarball
    tarball=$(npm view "$1@$2" dist.tarball)
    mkdir -p "$work/$1"
    curl --fail --silent --show-error --location "$tarball" | tar xz -C "$work/$1"
}

unpack graphiql "$GRAPHIQL"
unpack react "$REACT"
unpack react-dom "$REACT"

cp "$work/graphiql/package/graphiql.min.js" graphiql.min.js
cp "$work/graphiql/package/graphiql.min.css" graphiql.min.css
cp "$work/graphiql/package/LICENSE" LICENSE.graphiql
cp "$work/react/package/umd/react.production.min.js" react.production.min.js
cp "$work/react/package/LICENSE" LICENSE.react
cp "$work/react-dom/package/umd/react-dom.production.min.js" react-dom.production.min.js
cp "$work/react-dom/package/LICENSE" LICENSE.react-dom

files=(graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js
    LICENSE.graphiql LICENSE.react LICENSE.react-dom)
if [[ "${1:-}" == "--update" ]]; then
    sha256sum "${files[@]}" > SHA256SUMS
fi
sha256sum --check SHA256SUMS
