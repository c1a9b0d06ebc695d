#!/usr/bin/env bash
# Short fuzz runs for CI: `fuzz.sh PACKAGE TARGET TIME`. A real finding makes go
# test write the failing input to testdata/fuzz and fails here. Go's fuzzer can
# also end with "context deadline exceeded" when its time runs out while it is
# still shrinking a new (not failing) input; that is not a finding, so it is
# retried once.
set -uo pipefail
pkg=$1 target=$2 time=$3
for attempt in 1 2; do
  out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$time" -fuzzminimizetime=5s "$pkg" 2>&1)
  status=$?
  echo "$out" | tail -4
  [ $status -eq 0 ] && exit 0
  if echo "$out" | grep -q "Failing input written"; then
    echo "fuzz: $target found a failing input" >&2
    exit 1
  fi
  if ! echo "$out" | grep -q "context deadline exceeded"; then
    exit $status
  fi
  echo "fuzz: $target stopped while minimizing a new input (not a finding); attempt $attempt" >&2
done
exit 1
