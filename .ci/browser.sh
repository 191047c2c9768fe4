# Source me: installs Debian's chromium (apt) and the Playwright Python package if missing,
# so tests/api/test_api_browser.py can drive a real browser. Never runs `playwright install`
# (that would download browsers); the tests launch /usr/bin/chromium.
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
            || echo "browser.sh: could not install chromium; browser tests will be skipped" >&2
    else
        echo "browser.sh: no apt-get; install chromium yourself or the browser tests are skipped" >&2
    fi
fi
python -c "import playwright" 2>/dev/null || python -m pip install -q "playwright>=1.40" \
    || echo "browser.sh: could not install playwright; browser tests will be skipped" >&2
export OPENLFR_CHROMIUM="${OPENLFR_CHROMIUM:-$(command -v chromium || true)}"
