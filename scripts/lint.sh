#!/usr/bin/env bash
# Lints every module of the repository (the root, proof/, examples/kafka,
# examples/nats, contrib/*, cmd/*: each go.mod below here) with golangci-lint
# at a pinned version and the root's .golangci.yml, then checks that each
# go.mod and go.sum is tidy (`go mod tidy -diff`). Exits non-zero on any
# finding, after reporting all of them.
#
#   scripts/lint.sh
#
# golangci-lint is built from the Go module proxy (checked against the
# checksum database, like any module) on first use, into
# $REVGUARD_TOOLS_DIR (default ~/.cache/revguard-tools), one folder per
# version and Go toolchain, and reused after that: a `go run ...@version`
# per module would relink it eleven times, about 4 s each even when cached.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

version=v2.15.0
tools=${REVGUARD_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/revguard-tools}
bin=$tools/golangci-lint-$version-$(go env GOVERSION)
if [ ! -x "$bin/golangci-lint" ]; then
	echo "lint: building golangci-lint $version into $bin"
	GOBIN=$bin go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
config=$PWD/.golangci.yml

failed=()
# Every go.mod, but those in hidden folders (.git, .servers) and testdata.
for mod in $(find . -name go.mod -not -path '*/.*/*' -not -path '*/testdata/*' | sort); do
	dir=$(dirname "$mod")
	echo "lint: $dir"
	# Paths in the output and in the config's exclusions are relative to
	# the config, that is to the repository root, whichever module runs.
	(cd "$dir" && "$bin/golangci-lint" run --config "$config" ./...) || failed+=("golangci-lint $dir")
	(cd "$dir" && go mod tidy -diff) || failed+=("go mod tidy $dir")
done

if ((${#failed[@]})); then
	printf 'lint: failed: %s\n' "${failed[@]}"
	exit 1
fi
echo "lint: clean"
