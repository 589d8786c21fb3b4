#!/bin/sh
# Create the unprivileged users the test suite runs sbx as (needs root):
#   sbx-test   with a subuid/subgid range (the newuidmap path)
#   sbx-test1  with none (the single-id path)
# Idempotent. The harness calls it when started as root.
set -eu
[ "$(id -u)" = 0 ] || { echo "setup-test-users.sh: must run as root" >&2; exit 1; }
for u in sbx-test sbx-test1; do
  if ! getent passwd "$u" >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  fi
done
# A range no other user holds: 3000000-3065535.
if ! grep -q '^sbx-test:' /etc/subuid 2>/dev/null; then
  usermod --add-subuids 3000000-3065535 sbx-test
fi
if ! grep -q '^sbx-test:' /etc/subgid 2>/dev/null; then
  usermod --add-subgids 3000000-3065535 sbx-test
fi
# sbx-test1 must have no range, whatever useradd's SUB_UID_COUNT did.
for f in /etc/subuid /etc/subgid; do
  if grep -q '^sbx-test1:' "$f" 2>/dev/null; then
    sed -i '/^sbx-test1:/d' "$f"
  fi
done
