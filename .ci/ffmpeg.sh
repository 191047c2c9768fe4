#!/usr/bin/env bash
# Install ffmpeg (for the live-stream test in tests/pipeline/test_pipe_stream.py) if missing.
# Source or run it; needs apt (Debian/Ubuntu) and root, as the CI image has.
if ! command -v ffmpeg >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi
