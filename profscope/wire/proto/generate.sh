#!/usr/bin/env bash
# Regenerate the *_pb2.py files from the .proto files beside this script.
# Imports are rooted at the repository so the generated modules import each other as
# profscope.wire.proto.<pkg>.v1.<name>_pb2 (package names on the wire stay push.v1, types.v1,
# querier.v1, google.v1 as published by Grafana Pyroscope).
set -euo pipefail
cd "$(dirname "$0")/../../.."
python3 -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
  profscope/wire/proto/types/v1/types.proto \
  profscope/wire/proto/push/v1/push.proto \
  profscope/wire/proto/google/v1/profile.proto \
  profscope/wire/proto/querier/v1/querier.proto
