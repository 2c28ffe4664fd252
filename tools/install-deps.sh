#!/bin/sh
# install-deps.sh - install what the build (and, with "test", the tests) need.
#
# Usage: tools/install-deps.sh build|test
# Installs with apt-get only what is missing, so a machine that has
# everything installs nothing. Postfix is wanted only for smtp-sink,
# smtp-source and as a test peer: debconf is preseeded with "No
# configuration" so that no system MTA starts or listens on port 25.
set -eu

build_pkgs="build-essential pkg-config liblmdb-dev lmdb-utils libc-ares-dev libssl-dev libmicrohttpd-dev libidn2-dev libcurl4-openssl-dev"
test_pkgs="postfix swaks libnet-ssleay-perl fetchmail dnsmasq-base python3 openssl procps iproute2 groff-base systemd prometheus chromium clang-14 libclang-rt-14-dev faketime unbound nsd ldnsutils"

want="$build_pkgs"
[ "${1:-build}" = test ] && want="$want $test_pkgs"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Postfix must never run as the system MTA here: it is only a test peer.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now postfix >/dev/null 2>&1 || true
	# unbound and nsd are DNS servers for the DANE tests only.
	systemctl disable --now unbound nsd >/dev/null 2>&1 || true
	# prometheus is installed for promtool only.
	systemctl disable --now prometheus prometheus-node-exporter \
	    >/dev/null 2>&1 || true
fi
