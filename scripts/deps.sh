#!/bin/sh
# Installs genbench's build and test dependencies from Debian's packages (run as root).
# Idempotent: skips apt when everything is present already.
set -e
pkgs="build-essential cmake pkg-config git libpcre2-dev libutf8proc-dev libcjson-dev libssl-dev libcurl4-openssl-dev zlib1g-dev python3"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
# Node.js runs the differential tokenizer test against Hugging Face's own implementation.
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
