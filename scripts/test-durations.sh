#!/usr/bin/env bash
# Where the suite's time goes: per test class, the summed durations of its tests (from TRX result files), the
# class's first start to last end (its wall span: xunit runs classes side by side), and each TRX run's wall time.
#   scripts/test-durations.sh [results-folder or .trx files...] [--top N]
# Default: artifacts/test-results (what test.sh writes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=25
files=()
while (($#)); do
  case "$1" in
    --top) top="$2"; shift 2 ;;
    *) if [[ -d "$1" ]]; then files+=("$1"/*.trx); else files+=("$1"); fi; shift ;;
  esac
done
((${#files[@]})) || files=(artifacts/test-results/*.trx)
python3 - "$top" "${files[@]}" <<'PY'
import sys, re, collections, datetime
import xml.etree.ElementTree as ET

top = int(sys.argv[1])
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}

def seconds(text):
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)

def instant(text):
    # 2026-12-04T14:10:59.1234567+00:00: trim the fraction to microseconds for fromisoformat.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.datetime.fromisoformat(text)

total = collections.defaultdict(float)
count = collections.Counter()
first = {}
last = {}
for path in sys.argv[2:]:
    root = ET.parse(path).getroot()
    times = root.find("t:Times", ns)
    classes = {}
    for definition in root.iterfind(".//t:UnitTest", ns):
        method = definition.find("t:TestMethod", ns)
        classes[definition.get("id")] = method.get("className")
    for result in root.iterfind(".//t:UnitTestResult", ns):
        name = classes.get(result.get("testId"), "?")
        total[name] += seconds(result.get("duration", "0:0:0"))
        count[name] += 1
        start, end = instant(result.get("startTime")), instant(result.get("endTime"))
        first[name] = min(first.get(name, start), start)
        last[name] = max(last.get(name, end), end)
    if times is not None:
        wall = instant(times.get("finish")) - instant(times.get("start"))
        print(f"{path}: {wall.total_seconds():7.1f} s wall, {sum(1 for _ in root.iterfind('.//t:UnitTestResult', ns))} results")

print(f"\n{'summed s':>9} {'span s':>8} {'tests':>5}  class")
for name, value in sorted(total.items(), key=lambda p: -p[1])[:top]:
    span = (last[name] - first[name]).total_seconds()
    print(f"{value:9.1f} {span:8.1f} {count[name]:5}  {name}")
PY
