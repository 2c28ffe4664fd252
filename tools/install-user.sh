#!/bin/sh
# install-user.sh - create the unprivileged `postern` user posternd drops
# to, when run as root and it does not exist yet (make install, make run).
set -eu
user=${1:-postern}
[ "$(id -u)" -eq 0 ] || exit 0
getent passwd "$user" >/dev/null 2>&1 && exit 0
useradd --system --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin "$user"
echo "install-user: created system user $user" >&2
