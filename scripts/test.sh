#!/usr/bin/env bash
# Runs the root module's tests as plain `go test` would, and ends with one
# line naming the tests that skipped because a server was not running and
# how to run them: plain `go test ./...` prints "ok" for a package whose
# server tests all skipped. Extra arguments go to `go test`.
#
#   scripts/test.sh                                  about 2-3 minutes on 2 cores
#   eval "$(scripts/servers.sh start)"; scripts/test.sh    every server test too
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
go build -o "${TMPDIR:-/tmp}/revguard-testsum" ./internal/testsum
go test -race -shuffle=on -count=1 -json "$@" ./... | "${TMPDIR:-/tmp}/revguard-testsum"
