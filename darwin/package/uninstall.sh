#!/bin/sh
# Removes Vigil from a Mac, as root (an MDM can push it as a script):
#   sudo sh uninstall.sh [--purge]
# It stops the daemon, `vigil uninstall` gives every agent's file its original back and
# removes what `vigil install` wrote, then the package's own files (the binary and the
# LaunchDaemon, which vigil install found in place and so never owned) and its receipt go.
# The sensor's data stays, as a record of what the agents did, unless --purge: /var/lib/vigil
# (the store) and /var/log/vigil (the events). Remove the PPPC profile through the MDM.
set -eu

purge=
case "${1:-}" in
"") ;;
--purge) purge=1 ;;
*)
	echo "usage: uninstall.sh [--purge]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "uninstall.sh: run as root (sudo sh uninstall.sh)" >&2
	exit 1
fi

label=com.vigil-sensor.vigil
bin=/usr/local/bin/vigil
if launchctl print "system/$label" >/dev/null 2>&1; then
	launchctl bootout "system/$label"
fi
if [ -x "$bin" ]; then
	"$bin" uninstall
fi
rm -f "$bin" /Library/LaunchDaemons/com.vigil-sensor.vigil.plist
# A Mac installed with `vigil install` rather than the package has no receipt.
if pkgutil --pkg-info "$label" >/dev/null 2>&1; then
	pkgutil --forget "$label"
fi
if [ -n "$purge" ]; then
	rm -rf /var/lib/vigil /var/log/vigil
fi
