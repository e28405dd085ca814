# apt_install PACKAGE...: installs Debian packages with apt-get, as root or through passwordless sudo
# (sourced by test.sh and quickstart.sh; not run on its own).
#   in:   a `log` function defined by the caller (messages for stderr)
#   out:  status 0 when installed; 1 with a message naming the cause (not root, no apt-get, offline).

apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      log "$* not installed and this user cannot run apt-get (not root, no passwordless sudo)."
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    log "$* not installed and apt-get is unavailable."
    return 1
  fi
  log "installing $* with apt-get"
  if ! { "${sudo[@]}" apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; then
    log "apt-get could not install $* (offline?)."
    return 1
  fi
}
