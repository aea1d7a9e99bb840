#!/usr/bin/env bash
# Regenerates the Go code of sdk/proto into the directory given (default: the
# tree itself). protoc comes from Debian's protobuf-compiler; the Go plugins are
# the versions pinned as tools in the root go.mod, which also selects the
# protobuf and gRPC runtime sdk/go.mod requires (keep them the same version).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/sdk/proto}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cd "$root"
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
mkdir -p "$out"
cd sdk/proto
PATH="$bin:$PATH" protoc -I . \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  $(find zoe -name '*.proto' | sort)
