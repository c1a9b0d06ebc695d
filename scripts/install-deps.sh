#!/usr/bin/env bash
# Installs what Vigil's build, demo and tests need on a Debian machine. Idempotent.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (sudo), apt-get needs it" >&2
  exit 2
fi

# iproute2 + nftables: the test lab's namespaces, bridges and partitions;
# iputils-ping: lab connectivity checks; procps/psmisc: process inspection.
# systemd-container + systemd + dbus: a real systemd booted in systemd-nspawn for the
# systemd resource tests (these machines have no systemd as PID 1).
# resource-agents + kmod + e2fsprogs + util-linux + mount: Debian's OCF agents (Dummy,
# IPaddr2, Filesystem on a loop device) run unchanged in the resource tests.
# pacemaker-resource-agents: ocf:pacemaker:Stateful, the promotable resource tests' agent.
# chromium: the web console's browser test drives it headless (chromedp).
# rsync: the sync resource and its test's rsync daemon.
# curl: the Tomcat example's health-check scripts.
# keepalived: the failover benchmark's comparison (VRRP); it runs only inside the lab's
# network namespaces, its Debian service stays disabled (below).
# openssh-server: the sync resource's ssh transport is tested against Debian's sshd, which
# the test runs inside the lab's network namespaces with its own config and keys; when this
# script installs it, its Debian service is disabled (below).
pkgs=(iproute2 nftables iputils-ping procps psmisc ca-certificates git make rsync curl
      systemd-container systemd dbus
      resource-agents kmod e2fsprogs util-linux mount
      chromium keepalived openssh-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
new_sshd=no
case " ${missing[*]-} " in *" openssh-server "*) new_sshd=yes ;; esac
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi

# pacemaker-resource-agents (ocf:pacemaker:Stateful) without its recommends: they pull
# pacemaker and corosync, whose services would start a cluster stack on this machine.
# Stateful only misses crm_attribute, whose exit status it ignores.
if ! dpkg-query -W -f='${Status}' pacemaker-resource-agents 2>/dev/null | grep -q "install ok installed"; then
  export DEBIAN_FRONTEND=noninteractive
  [ "${#missing[@]}" -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 pacemaker-resource-agents
fi

# keepalived must never run as this machine's service: it would put a VIP on the
# machine's own interfaces. Debian's unit starts only once /etc/keepalived/keepalived.conf
# exists, which nothing here writes; disable it all the same, with or without systemd as
# PID 1, and stop a daemon the service started (its pid file, in this network namespace).
if [ -e /etc/init.d/keepalived ] || [ -e /lib/systemd/system/keepalived.service ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now keepalived.service >/dev/null 2>&1 || true
  else
    update-rc.d keepalived disable >/dev/null 2>&1 || true
    rm -f /etc/systemd/system/multi-user.target.wants/keepalived.service
    if [ -s /run/keepalived.pid ]; then
      pid=$(cat /run/keepalived.pid)
      if [ -d "/proc/$pid" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/1/ns/net)" ]; then
        kill "$pid" || true
      fi
    fi
  fi
fi

# An sshd that this script just installed must not listen on the machine for the tests'
# sake: disable its service and stop a daemon the package started. One that was installed
# before is left alone (the machine may well be reached over it).
if [ "$new_sshd" = yes ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  else
    update-rc.d ssh disable >/dev/null 2>&1 || true
    rm -f /etc/systemd/system/multi-user.target.wants/ssh.service /etc/systemd/system/sshd.service
    if [ -s /run/sshd.pid ]; then
      pid=$(cat /run/sshd.pid)
      if [ -d "/proc/$pid" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/1/ns/net)" ]; then
        kill "$pid" || true
      fi
    fi
  fi
fi

export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
  echo "install-deps: Go 1.26 or newer is required (expected at /usr/local/go); Debian's golang package is too old" >&2
  exit 1
fi
go mod download
