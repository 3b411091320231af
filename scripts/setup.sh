#!/usr/bin/env bash
# Installs Doorman's build and test dependencies from Debian 12 packages.
# Idempotent: packages already installed are skipped; nothing is downloaded
# except through apt-get. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev grpc-proto
  libboost-dev libboost-system-dev
  libhiredis-dev libssl-dev libyaml-cpp-dev
  libldap-dev  # the LDAP / Active Directory sync (directory/sync/)
  libgtest-dev libgmock-dev
  redis-server redis-sentinel swaks postfix postfix-lmdb
  slapd ldap-utils  # a real LDAP server (and ldapsearch/ldapmodify) for the sync tests and bench/ldap-sync.sh
  openssl libnet-ssleay-perl libio-socket-ssl-perl  # test PKI; swaks --tls
  python3
  prometheus  # promtool and a real Prometheus server for tests/observability
  chromium nodejs npm  # the web console's browser test (tests/directory/console/browser; npm ci installs puppeteer-core)
)

missing=()
for p in "${PACKAGES[@]}"; do
  # A Node.js from another source (e.g. NodeSource's nodejs, which ships npm itself and conflicts with Debian's npm
  # package) serves as well as Debian's.
  if [ "$p" = nodejs ] && command -v node > /dev/null; then continue; fi
  if [ "$p" = npm ] && command -v npm > /dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# postfix asks questions at install time; answer them so the install is silent.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "postfix postfix/mailname string doorman.invalid" | $SUDO debconf-set-selections
# slapd: no system-wide directory; the tests write their own configuration.
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
