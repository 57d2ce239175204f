# shellcheck shell=bash
# The toolchain shared by scripts/setup, scripts/test and scripts/develop.
#
# Home Assistant 2026.3+ needs Python >= 3.14.2. Hosts that have one (or can get one through uv) use a plain
# virtual environment in ./.venv. Debian 12 hosts have neither, and sid's python3.14 needs a newer glibc than
# theirs, so there we build a minimal Debian sid root with debootstrap and run the tools chrooted into it, inside
# a private mount namespace so that nothing stays mounted when the command ends, however it ends.
#
# Sourced from the repository root. Public functions: toolchain_setup, toolchain_run.

readonly TOOLCHAIN_MIN_PYTHON="3.14.2"
readonly TOOLCHAIN_REQUIREMENTS="requirements_test.txt"
# The sid root is shared by every checkout on the machine (CI clones into another folder).
TOOLCHAIN_ROOT="${CHEKT_TOOLCHAIN_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/chekt-ha/sid-root}"
readonly TOOLCHAIN_ROOT_VENV="/opt/chekt-venv"
# libturbojpeg0: Home Assistant's camera integration; libatomic1: the Node.js runtime inside Playwright's wheel
# (scripts/screenshots).
readonly TOOLCHAIN_ROOT_PACKAGES="python3.14,python3.14-venv,ca-certificates,libturbojpeg0,libatomic1"

_log() { printf 'setup: %s\n' "$*" >&2; }

# Prints the path of a python3.14 on PATH that is new enough, or nothing.
_native_python() {
  local candidate
  for candidate in python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c "import sys; raise SystemExit(sys.version_info < (3, 14, 2))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  if command -v uv >/dev/null 2>&1; then
    uv python find ">=${TOOLCHAIN_MIN_PYTHON}" 2>/dev/null && return 0
    if uv python install 3.14 >/dev/null 2>&1; then
      uv python find ">=${TOOLCHAIN_MIN_PYTHON}" 2>/dev/null && return 0
    fi
  fi
  return 0
}

# A digest of what the environment must contain; the environment is brought up to date when it changes.
_requirements_digest() {
  { cat "$TOOLCHAIN_REQUIREMENTS"; echo "$TOOLCHAIN_ROOT_PACKAGES"; } | sha256sum | cut -d' ' -f1
}

# "native" or "root". A sid root once built stays the choice, so that the answer does not flip between runs.
toolchain_mode() {
  if [ -n "${CHEKT_TOOLCHAIN:-}" ]; then
    echo "$CHEKT_TOOLCHAIN"
  elif [ -x .venv/bin/python ] && [ -f .venv/.chekt-native ]; then
    echo native
  elif [ -n "$(_native_python)" ]; then
    echo native
  else
    echo root
  fi
}

_setup_native() {
  local python digest
  digest="$(_requirements_digest)"
  if [ -f .venv/.chekt-native ] && [ "$(cat .venv/.chekt-native)" = "$digest" ]; then
    return 0
  fi
  python="$(_native_python)"
  _log "creating .venv with $python"
  "$python" -m venv --clear .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r "$TOOLCHAIN_REQUIREMENTS"
  echo "$digest" >.venv/.chekt-native
}

# The mirror apt already uses, so that no host is written into the project.
_debian_mirror() {
  local mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)"
  fi
  if [ -z "$mirror" ]; then
    _log "cannot find a Debian mirror in apt's sources; set CHEKT_DEBIAN_MIRROR"
    return 1
  fi
  echo "${CHEKT_DEBIAN_MIRROR:-$mirror}"
}

_build_root() {
  local staging mirror
  if [ "$(id -u)" != 0 ]; then
    _log "building the Python 3.14 root needs root (debootstrap, chroot); run as root or install Python >= ${TOOLCHAIN_MIN_PYTHON}"
    return 1
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    _log "installing debootstrap"
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
  fi
  mirror="$(_debian_mirror)"
  staging="${TOOLCHAIN_ROOT}.partial"
  rm -rf "$staging"
  mkdir -p "$(dirname "$TOOLCHAIN_ROOT")"
  _log "building a Debian sid root with Python 3.14 in $TOOLCHAIN_ROOT (about two minutes, once)"
  debootstrap --variant=minbase --include="$TOOLCHAIN_ROOT_PACKAGES" sid "$staging" "$mirror" >"${staging}.log" 2>&1 || {
    _log "debootstrap failed; its log: ${staging}.log"
    return 1
  }
  rm -f "${staging}.log"
  mv "$staging" "$TOOLCHAIN_ROOT"
}

# Files the root needs from the host on every run: name resolution and the CA bundle pip and aiohttp trust.
_refresh_root_files() {
  cp -L /etc/resolv.conf "$TOOLCHAIN_ROOT/etc/resolv.conf" 2>/dev/null || true
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$TOOLCHAIN_ROOT/etc/ssl/certs/host-ca-certificates.crt"
  fi
}

# Debian packages a root built before they were added to TOOLCHAIN_ROOT_PACKAGES still lacks.
_install_missing_root_packages() {
  local package missing=()
  for package in ${TOOLCHAIN_ROOT_PACKAGES//,/ }; do
    chroot "$TOOLCHAIN_ROOT" dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  _log "installing ${missing[*]} into the root"
  toolchain_run_in_root apt-get -qq -o Acquire::Check-Valid-Until=false update
  toolchain_run_in_root /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

_setup_root() {
  local digest stamp
  digest="$(_requirements_digest)"
  stamp="$TOOLCHAIN_ROOT$TOOLCHAIN_ROOT_VENV/.chekt-digest"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    return 0
  fi
  [ -x "$TOOLCHAIN_ROOT/usr/bin/python3.14" ] || _build_root
  _refresh_root_files
  _install_missing_root_packages
  # The environment is updated in place, not rebuilt: tests or the demo of another checkout may be using it.
  if [ ! -x "$TOOLCHAIN_ROOT$TOOLCHAIN_ROOT_VENV/bin/python" ]; then
    toolchain_run_in_root /usr/bin/python3.14 -m venv "$TOOLCHAIN_ROOT_VENV"
    toolchain_run_in_root pip install --quiet --upgrade pip
  fi
  _log "installing the test and development stack into the root's virtual environment (about two minutes)"
  toolchain_run_in_root pip install --quiet -r "$PWD/$TOOLCHAIN_REQUIREMENTS"
  echo "$digest" >"$stamp"
}

# Runs a command chrooted into the sid root, with this checkout bind-mounted at the same path, in a private
# mount namespace: the mounts vanish with the command. The host's network is shared, so servers started inside
# are reachable on 127.0.0.1 from outside and the other way round.
toolchain_run_in_root() {
  local checkout="$PWD"
  local cert="/etc/ssl/certs/host-ca-certificates.crt"
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root="$1"; checkout="$2"; shift 2
    mkdir -p "$root$checkout" "$root/proc" "$root/dev"
    mount --bind "$checkout" "$root$checkout"
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    exec chroot "$root" /usr/bin/env -i -C "$checkout" "$@"
  ' toolchain "$TOOLCHAIN_ROOT" "$checkout" \
    HOME=/root PATH="$TOOLCHAIN_ROOT_VENV/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$TOOLCHAIN_ROOT_VENV" \
    PIP_CERT="$cert" SSL_CERT_FILE="$cert" REQUESTS_CA_BUNDLE="$cert" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" ${CHEKT_ENV:-} "$@"
}

toolchain_setup() {
  local mode lock
  mode="$(toolchain_mode)"
  case "$mode" in
    native) lock="$PWD/.venv.lock" ;;
    root) lock="$(dirname "$TOOLCHAIN_ROOT")/setup.lock" ;;
    *)
      _log "unknown CHEKT_TOOLCHAIN '$mode' (native or root)"
      return 1
      ;;
  esac
  mkdir -p "$(dirname "$lock")"
  # Two commands started at once (a test run and the demo) must not build the same environment twice.
  (
    flock 9
    if [ "$mode" = native ]; then _setup_native; else _setup_root; fi
  ) 9>"$lock"
}

# Runs a command (ruff, mypy, pytest, hass, python ...) with the project's virtual environment first on PATH.
toolchain_run() {
  case "$(toolchain_mode)" in
    native) PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv" "$@" ;;
    root)
      _refresh_root_files
      toolchain_run_in_root "$@"
      ;;
  esac
}
