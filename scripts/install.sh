#!/usr/bin/env bash
# Install xmfax and everything it needs on a Debian machine (run as root, or with sudo).
#
#   scripts/install.sh          xmfax, its C codecs and its Python dependencies
#   scripts/install.sh --test   also the test tools and the real peers the tests talk to:
#                               libtiff-tools, spandsp, iaxmodem + efax, poppler, Ghostscript,
#                               the SIP peers sipp, Kamailio, baresip and sipsak, and for
#                               `xmfax serve`: PostgreSQL, headless Chromium, swaks, CUPS' lp
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

pkgs=(python3 python3-pip python3-dev gcc fonts-dejavu-core)
[ $with_tests = 1 ] && pkgs+=(libtiff-tools libtiff-dev libspandsp2 libspandsp-dev poppler-utils ghostscript
                              iaxmodem efax iproute2 util-linux
                              sip-tester kamailio baresip-core sipsak
                              postgresql chromium swaks libnet-ssleay-perl cups-client cups-daemon curl)

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install.sh: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    echo "install.sh: not root or no apt-get; skipping Debian packages (${pkgs[*]})" >&2
fi

# Debian's own python3 marks itself externally managed; xmfax is meant to be installed into it here.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
py=python3
extra="[server]"
[ $with_tests = 1 ] && extra="[server,test]"
XMFAX_REQUIRE_C="${XMFAX_REQUIRE_C:-0}" $py -m pip install -q -e ".${extra}"
$py -c "import xmfax.codecs as c; print('xmfax installed; codec backend:', c.backend)"
