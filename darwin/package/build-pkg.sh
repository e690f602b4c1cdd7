#!/bin/sh
# Builds Vigil's macOS installer package, vigil-<version>.pkg, on a Mac (pkgbuild and
# productbuild ship with macOS). Its input is dist/darwin, which `make package` lays on any
# machine: the payload root (the universal binary at /usr/local/bin/vigil and the LaunchDaemon),
# the installer scripts, this script, the PPPC profile and VERSION.
#
#   sh dist/darwin/build-pkg.sh              the package lands beside it, in dist/darwin
#   sh darwin/package/build-pkg.sh           from the repository: lays dist/darwin first (Go)
#
# Signing and notarization are optional, each done when its variable is set:
#   VIGIL_SIGN_APP="Developer ID Application: Example Corp (TEAMID)"
#       signs the binary (hardened runtime, secure timestamp) with the stable identifier
#       com.vigil-sensor.vigil that the PPPC profile's CodeRequirement names. Unsigned, the
#       binary keeps the Go linker's ad-hoc signature, a hash of this one build: no Full Disk
#       Access grant survives an upgrade, so sign whatever a fleet runs.
#   VIGIL_SIGN_INSTALLER="Developer ID Installer: Example Corp (TEAMID)"
#       signs the package (productbuild --sign).
#   VIGIL_NOTARY_PROFILE=<name>
#       a notarytool keychain profile (xcrun notarytool store-credentials <name> ...): the
#       signed package is submitted to Apple's notary service, waited for and stapled.
#
# The binary lives in /usr/local/bin, as `vigil install` puts it. On a Mac where an admin
# user owns /usr/local/bin (Homebrew on Intel), that user can replace a binary launchd runs as
# root; the PPPC requirement keeps Full Disk Access from a replaced binary, not root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=$here
if [ ! -f "$dir/VERSION" ]; then
	repo=$(cd "$here/../.." && pwd)
	(cd "$repo" && go run ./sensor/install/package -formats darwin -out dist \
		-version "$(git describe --tags --always --dirty)")
	dir=$repo/dist/darwin
fi
version=$(cat "$dir/VERSION")
identifier=com.vigil-sensor.vigil

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: signing rewrites the binary, and a payload copied from another machine may have lost
# its modes (pkgbuild records the modes it finds, and root:wheel as the owner).
ditto "$dir/root" "$work/root"
ditto "$dir/scripts" "$work/scripts"
chmod 0755 "$work/root/usr/local/bin/vigil" "$work/scripts/preinstall" "$work/scripts/postinstall"
chmod 0644 "$work/root/Library/LaunchDaemons/$identifier.plist"
bin=$work/root/usr/local/bin/vigil

if [ -n "${VIGIL_SIGN_APP:-}" ]; then
	codesign --force --sign "$VIGIL_SIGN_APP" --identifier "$identifier" --options runtime --timestamp "$bin"
	codesign --verify --strict --verbose=2 "$bin"
	echo "the binary's designated requirement, for the PPPC profile's CodeRequirement:"
	codesign -dr - "$bin"
fi

pkgbuild --root "$work/root" --scripts "$work/scripts" --identifier "$identifier" \
	--version "$version" --install-location / --ownership recommended "$work/vigil-component.pkg"
out=$dir/vigil-$version.pkg
if [ -n "${VIGIL_SIGN_INSTALLER:-}" ]; then
	productbuild --package "$work/vigil-component.pkg" --sign "$VIGIL_SIGN_INSTALLER" --timestamp "$out"
else
	productbuild --package "$work/vigil-component.pkg" "$out"
fi
if [ -n "${VIGIL_NOTARY_PROFILE:-}" ]; then
	xcrun notarytool submit "$out" --keychain-profile "$VIGIL_NOTARY_PROFILE" --wait
	xcrun stapler staple "$out"
fi
echo "built $out"
