#!/usr/bin/env bash
# Installs the baselines the benchmark suite compares memwal with, without
# touching the project's package.json or lock file:
#   - LanceDB's Node SDK (@lancedb/lancedb, its prebuilt linux-x64-gnu addon
#     and the apache-arrow version inside its peer range) into bench/.deps/
#   - pylance + pyarrow for Lance's own MemWAL shard writer (pip)
# Idempotent: does nothing when the pinned versions are already there.
# Set BENCH_SKIP_LANCEDB=1 or BENCH_SKIP_PYLANCE=1 to leave one out; the suite
# then marks that baseline n/a.
set -euo pipefail

LANCEDB_VERSION=0.39.0
# LanceDB 0.39 declares apache-arrow >=15 <=18.1 as a peer; memwal's own
# dev dependency is newer, so LanceDB gets its own copy next to it.
LANCEDB_ARROW_VERSION=18.1.0
PYLANCE_VERSION=14.0.2
PYARROW_VERSION=26.0.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="$here/.deps"
python="${PYTHON:-python3}"

installed_npm_version() {
  node -e 'try { process.stdout.write(require(process.argv[1]).version) } catch { }' \
    "$deps/node_modules/$1/package.json"
}

if [[ "${BENCH_SKIP_LANCEDB:-}" != "1" ]]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform_pkg=@lancedb/lancedb-linux-x64-gnu ;;
    Linux-aarch64) platform_pkg=@lancedb/lancedb-linux-arm64-gnu ;;
    Darwin-arm64) platform_pkg=@lancedb/lancedb-darwin-arm64 ;;
    *) platform_pkg="" ;;
  esac
  if [[ "$(installed_npm_version @lancedb/lancedb)" == "$LANCEDB_VERSION" &&
    "$(installed_npm_version apache-arrow)" == "$LANCEDB_ARROW_VERSION" &&
    ( -z "$platform_pkg" || "$(installed_npm_version "$platform_pkg")" == "$LANCEDB_VERSION" ) ]]; then
    echo "bench/setup: @lancedb/lancedb $LANCEDB_VERSION already in bench/.deps"
  else
    echo "bench/setup: installing @lancedb/lancedb $LANCEDB_VERSION into bench/.deps"
    mkdir -p "$deps"
    # --no-save: no package.json is written anywhere; --prefix keeps it out of the
    # project's node_modules (and its apache-arrow peer away from ours).
    # --omit=optional skips LanceDB's optional embedding providers (transformers,
    # openai); the platform addon is named explicitly so it is still installed.
    # --ignore-scripts: nothing here needs an install script.
    pkgs=("@lancedb/lancedb@$LANCEDB_VERSION" "apache-arrow@$LANCEDB_ARROW_VERSION")
    [[ -n "$platform_pkg" ]] && pkgs+=("$platform_pkg@$LANCEDB_VERSION")
    npm install --prefix "$deps" --no-save --no-package-lock --omit=optional \
      --ignore-scripts --no-audit --no-fund --loglevel=error "${pkgs[@]}"
  fi
fi

if [[ "${BENCH_SKIP_PYLANCE:-}" != "1" ]]; then
  have="$("$python" -c 'import lance, pyarrow; print(lance.__version__, pyarrow.__version__)' 2>/dev/null || true)"
  if [[ "$have" == "$PYLANCE_VERSION $PYARROW_VERSION" ]]; then
    echo "bench/setup: pylance $PYLANCE_VERSION and pyarrow $PYARROW_VERSION already installed"
  else
    echo "bench/setup: installing pylance $PYLANCE_VERSION and pyarrow $PYARROW_VERSION"
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      "pylance==$PYLANCE_VERSION" "pyarrow==$PYARROW_VERSION" </dev/null
  fi
fi
