#!/usr/bin/env bash
# Opens the HTML report in headless Chromium and fails on any console message
# or any request the page makes; saves a screenshot (docs/report-screenshot.png
# by default).
#
#   tests/browser/check_report.sh                 # builds the sample report (tests/report.rs)
#   tests/browser/check_report.sh path/to/report.html [screenshot.png]
#
# Chromium (Debian's `chromium` package) is installed if missing. Two checks:
#  * console: Chromium logs every console message with --enable-logging as
#    "INFO:CONSOLE"; the report has no script, so any such line is an error
#    (a refused load under the report's Content-Security-Policy shows here).
#  * network: --log-net-log records every URL request. Chromium's own
#    background traffic has initiator "not an origin"; any request with a real
#    initiator came from the page. Host resolution is also mapped to NOTFOUND,
#    so nothing can leave the machine either way.
# Both checks are first run on a deliberately bad page, so a Chromium whose
# log format changed fails loudly instead of passing silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/auditlens-target}"

html="${1:-}"
screenshot="${2:-docs/report-screenshot.png}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! command -v chromium >/dev/null 2>&1; then
    echo "check_report: installing chromium" >&2
    sudo_if_needed=""
    if [ "$(id -u)" != 0 ]; then sudo_if_needed="sudo"; fi
    $sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_if_needed apt-get install -y -qq chromium >/dev/null
fi

# render FILE NAME: runs Chromium on FILE, leaves $work/NAME.{png,stderr,netlog.json}
render() {
    local file="$1" name="$2" profile
    profile="$(mktemp -d -p "$work")"
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
        --enable-logging=stderr --v=0 --host-resolver-rules="MAP * ~NOTFOUND" \
        --log-net-log="$work/$name.netlog.json" \
        --screenshot="$work/$name.png" --window-size=1280,2000 \
        "file://$(realpath "$file")" >/dev/null 2>"$work/$name.stderr"
}

# problems NAME: prints console messages and page-initiated requests
problems() {
    local name="$1"
    grep -h "CONSOLE" "$work/$name.stderr" || true
    grep -h '"initiator"' "$work/$name.netlog.json" | grep -v '"initiator":"not an origin"' \
        | grep -oE '"url":"[a-z-]+:[^"]*"' | grep -vE '"url":"(file|data|about):' || true
}

# Self-test: a page that loads a remote image under a CSP, and one without a CSP.
cat >"$work/bad-csp.html" <<'HTML'
<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'"><title>x</title></head><body><img src="http://example.com/x.png"></body></html>
HTML
cat >"$work/bad-fetch.html" <<'HTML'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>x</title></head><body><img src="http://example.com/x.png"></body></html>
HTML
render "$work/bad-csp.html" bad-csp
render "$work/bad-fetch.html" bad-fetch
if ! grep -q "CONSOLE" "$work/bad-csp.stderr"; then
    echo "check_report: self-test failed: a CSP violation was not seen in Chromium's console log" >&2
    exit 1
fi
if [ -z "$(problems bad-fetch)" ]; then
    echo "check_report: self-test failed: a page-initiated request was not seen in the net log" >&2
    exit 1
fi

if [ -z "$html" ]; then
    html="$work/report.html"
    AUDITLENS_SAMPLE_REPORT_OUT="$html" cargo test --release --quiet --test report sample_html_report -- --exact >&2
fi
render "$html" report
found="$(problems report)"
if [ -n "$found" ]; then
    echo "check_report: $html is not self-contained or logs to the console:" >&2
    echo "$found" >&2
    exit 1
fi
if [ ! -s "$work/report.png" ]; then
    echo "check_report: no screenshot produced" >&2
    cat "$work/report.stderr" >&2
    exit 1
fi
mkdir -p "$(dirname "$screenshot")"
cp "$work/report.png" "$screenshot"
echo "check_report: $html rendered with no console message and no network request; screenshot: $screenshot"
