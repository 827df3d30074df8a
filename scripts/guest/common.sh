# Shared by scripts/guest/*.sh (sourced, not run).
# GUEST_CACHE: where the guest kernel and initramfs are kept between runs, outside git.
# CONFORMANCE_GUEST_CACHE overrides it; the default is /var/cache/conformance-guest when we may
# write there (root, as in CI), else the user's cache folder.
if [ -n "${CONFORMANCE_GUEST_CACHE:-}" ]; then
    GUEST_CACHE=$CONFORMANCE_GUEST_CACHE
elif [ -w /var/cache ] || [ -w /var/cache/conformance-guest ]; then
    GUEST_CACHE=/var/cache/conformance-guest
else
    GUEST_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/conformance-guest
fi
mkdir -p "$GUEST_CACHE"

guest_log() { echo "guest: $*" >&2; }
guest_die() { echo "guest: $*" >&2; exit 2; }
