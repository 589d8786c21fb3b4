#!/bin/sh
# Install test (CI, as root): install a build into PREFIX, then run an image
# with the INSTALLED sbx as the unprivileged user sbx-test1. sbx must find
# its helpers where `meson install` put them (PREFIX/libexec/sbx: sbx-store
# imports the archive, sbx-net serves the default slirp network), not beside
# itself as in the build tree.
#
#   tests/install-test.sh BUILDDIR PREFIX
#
# BUILDDIR must have been configured with --prefix=PREFIX: the libexec path
# is compiled in, as in a distribution package (DESTDIR only stages files for
# a package and would leave that path dangling).
set -eu
build=$1 prefix=$2
user=sbx-test1
[ "$(id -u)" = 0 ] || { echo "install-test: must run as root (runs sbx as $user)" >&2; exit 1; }
configured=$(meson introspect --buildoptions "$build" |
  python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
[ "$configured" = "$prefix" ] || { echo "install-test: $build has prefix $configured, not $prefix" >&2; exit 1; }

rm -rf "$prefix"
meson install -C "$build" --quiet >/dev/null
chmod -R a+rX "$prefix"
libexec="$prefix/libexec/sbx"
for f in "$prefix/bin/sbx" "$libexec/sbx-store" "$libexec/sbx-net" "$prefix/share/man/man1/sbx.1"; do
  [ -e "$f" ] || { echo "install-test: $f not installed" >&2; exit 1; }
done
# Nothing of sbx's beside the installed binary: the lookup must go to libexec.
[ ! -e "$prefix/bin/sbx-store" ] && [ ! -e "$prefix/bin/sbx-net" ] ||
  { echo "install-test: helpers installed into bin/" >&2; exit 1; }

work=$(mktemp -d /tmp/sbx-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
cp "$build/examples/hello-world.tar" "$work/"
mkdir "$work/store"
chown "$user:" "$work/store"
chmod a+r "$work/hello-world.tar"

as_user() {
  setpriv --reuid="$user" --regid="$user" --clear-groups --reset-env \
    env HOME=/nonexistent PATH=/usr/bin:/bin "$@"
}
cd "$work"
# Import (sbx-store) and run on the default slirp network (sbx-net).
out=$(as_user "$prefix/bin/sbx" run -q --root "$work/store" "$work/hello-world.tar")
echo "$out" | grep -q 'Hello from sbx' ||
  { echo "install-test: unexpected output: $out" >&2; exit 1; }
# A store command execs sbx-store.
as_user "$prefix/bin/sbx" images --root "$work/store" | grep -q hello-world ||
  { echo "install-test: sbx images does not list the image" >&2; exit 1; }
echo "install-test: ok ($prefix/bin/sbx found $libexec/sbx-store and sbx-net)"
