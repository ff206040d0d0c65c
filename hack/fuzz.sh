#!/usr/bin/env bash
# fuzz.sh is `make fuzz`: it runs every fuzz target of wso2img's parsers for FUZZTIME
# each (default 20s; the reliability figures in docs/RELIABILITY.md come from
# FUZZTIME=10m) and prints a markdown table of what each run did. A target that finds a
# failing input fails the run; go test writes the input under testdata/fuzz/ of its
# package, where it then runs with every `go test` as a regression case.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fuzztime="${FUZZTIME:-20s}"
# FUZZ_ONLY, an extended regular expression, keeps the targets whose "package target"
# matches it, e.g. FUZZ_ONLY='^./watch ' or FUZZ_ONLY='FuzzSignature$'.
only="${FUZZ_ONLY:-}"
# FUZZFLAGS go to go test, e.g. FUZZFLAGS=-parallel=1 for one fuzzing worker per target.
read -r -a extra <<<"${FUZZFLAGS:-}"

# package target: every parser that reads input from users, registries or vendors.
targets=(
	"./tags FuzzParse"
	"./profiles FuzzParse"
	"./profiles FuzzParseByteSize"
	"./verify FuzzParsePolicy"
	"./watch FuzzTagHandling"
	"./build/inputs FuzzSignature"
	"./build/inputs FuzzParseNetrc"
	"./build/archive FuzzExtract"
	"./build/tomlcheck FuzzCheck"
	"./scan FuzzEvaluate"
	"./policy FuzzGenerate"
	"./cmd/wso2img FuzzParseAge"
)

printf '| package | target | time | executions | new interesting inputs | result |\n| --- | --- | --- | --- | --- | --- |\n'
failed=0
for t in "${targets[@]}"; do
	if [ -n "$only" ] && ! grep -qE -- "$only" <<<"$t"; then
		continue
	fi
	pkg="${t%% *}" fn="${t##* }"
	log="$(mktemp)"
	start=$SECONDS
	if go test -run XXX -fuzz "^$fn\$" -fuzztime "$fuzztime" -fuzzminimizetime 30s "${extra[@]}" "$pkg" >"$log" 2>&1; then
		result="pass"
	else
		result="**FAILED** (see below)"
		failed=1
	fi
	last="$(grep -E '^fuzz: elapsed' "$log" | tail -n 1 || true)"
	execs="$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")"
	newi="$(sed -n 's/.*new interesting: \([0-9]*\).*/\1/p' <<<"$last")"
	# shellcheck disable=SC2016 # the backquotes are markdown
	printf '| `%s` | `%s` | %ss | %s | %s | %s |\n' "$pkg" "$fn" "$((SECONDS - start))" "${execs:-?}" "${newi:-?}" "$result"
	if [ "$result" != pass ]; then
		tail -n 40 "$log" >&2
	fi
	rm -f "$log"
done
exit "$failed"
