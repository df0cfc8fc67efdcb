#!/usr/bin/env bash
# Installs the stores Panorama's benchmark (crates/panorama-bench) compares
# against, from Debian's packages: VictoriaMetrics, InfluxDB 1.x,
# PostgreSQL 15 and the sqlite3 shell. Nothing is started here: the bench
# starts private instances on temporary directories and 127.0.0.1 ports,
# never the system services. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(victoria-metrics influxdb postgresql-15 sqlite3)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  # Debian starts services on install; the bench does not use them.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The packaged services are not needed (and would hold ports and memory
# during the measurement): stop them if a service manager started them.
for svc in victoria-metrics influxdb postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  fi
done

for b in /usr/bin/victoria-metrics /usr/bin/influxd /usr/lib/postgresql/15/bin/initdb /usr/bin/sqlite3; do
  if [ -x "$b" ]; then echo "ok: $b"; else echo "MISSING: $b" >&2; fi
done
