/* oci-root: where sbx-oci keeps its containers' state when no --root is
 * given. Its own header (GLib only, no json-glib): `sbx run` links it to mask
 * these directories in volumes, since a job that could write a container's
 * record there steers what sbx-oci's later commands signal and run. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* runtime_dir/sbx-oci when runtime_dir ($XDG_RUNTIME_DIR, read by the
 * caller; NULL: none) is absolute and writable, else /tmp/sbx-oci-UID. */
char *sbx_oci_default_root(const char *runtime_dir, uid_t uid);
/* Every directory sbx_oci_default_root may choose (existing or not),
 * whichever it chooses now: another session's sbx-oci (one without a runtime
 * directory) uses another, and podman gives its runtime a runtime directory
 * of its own choosing (/run/user/UID, $TMPDIR/podman-run-UID, /tmp/...,
 * $HOME/rundir) when the user has none. NULL-ended. */
char **sbx_oci_root_candidates(const char *runtime_dir, uid_t uid);
