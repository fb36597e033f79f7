# Sourced by scripts/test and ./bench: the Python virtual environment with tests/requirements.txt
# (the rrcf reference forest, moto server), outside the clone and rebuilt when the requirements
# change. Exports REFERENCE_PYTHON; sets `pyenv` to its folder.
pyenv="${FLEETSTREAM_PYENV:-/var/tmp/fleetstream-pyenv}"
stamp="$pyenv/.requirements-$(sha256sum tests/requirements.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  command -v python3 >/dev/null || { echo "python3 is required (reference implementations, moto server)" >&2; exit 1; }
  echo "installing tests/requirements.txt into $pyenv" >&2
  rm -rf "$pyenv"
  python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch "$stamp"
fi
export REFERENCE_PYTHON="$pyenv/bin/python"
command -v curl >/dev/null || { echo "curl is required (emulator start-up checks)" >&2; exit 1; }
