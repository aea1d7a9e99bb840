#!/bin/sh
# smoke.sh: starts the analytics images (make images) as Zoe would start a
# ZApp of them, and checks they work: a Dask scheduler, two workers and a
# notebook on a network of their own that reaches nothing outside, finding
# each other by DNS name, as uid 1000:1000 (the caller's uid:gid when not
# root) with every capability dropped, no-new-privileges, a read-only root
# filesystem, 1 GiB each (512 MiB reserved, as Zoe's memory.max and
# memory.min give) and the owner's workspace mounted. check.py (in a
# container beside them, as Zoe's proxy, presenting the notebook's
# ZOE_PROXY_TOKEN as "Authorization: token ...") checks that Jupyter refuses
# requests without the token, runs a Dask computation in a notebook kernel
# through Jupyter's API under its proxy prefix and reads the scheduler's
# pages under theirs; a notebook given no token makes one of its own; then a
# batch job of zoe/python writes to the workspace, and every service stops
# on SIGTERM. Everything it makes is removed at the end.
set -eu
cd "$(dirname "$0")"
tag=bookworm-$(cat ../VERSION)
p=zoe-smoke-$$
exec_id=1 deployment=smoke
dns() { echo "$1-$exec_id-$deployment"; }
step() { echo "== $(date +%T) $*"; }

ws=$(mktemp -d)
cleanup() {
  docker rm -f "$p-scheduler0" "$p-worker0" "$p-worker1" "$p-notebook0" "$p-notebook1" "$p-check" "$p-batch" \
    >/dev/null 2>&1 || true
  docker network rm "$p" >/dev/null 2>&1 || true
  rm -rf "$ws"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if [ "$(id -u)" = 0 ]; then user=1000:1000; chown 1000:1000 "$ws"; else user=$(id -u):$(id -g); fi
# An internal network: nothing outside it is reachable, so nothing is
# fetched at run time.
docker network create --internal "$p" >/dev/null

# What Zoe's Docker back-end and core give every container (ZOE_*,
# SERVICE_NAME, REVERSE_PROXY_PATH_<port> for each port, ZOE_PROXY_TOKEN
# for a service with a proxied port, the workspace).
run() { # run SERVICE [docker run option...] IMAGE [COMMAND...]
  svc=$1; shift
  docker run -d --name "$p-$svc" --network "$p" --hostname "$(dns "$svc")" --network-alias "$(dns "$svc")" \
    --user "$user" --cap-drop ALL --security-opt no-new-privileges --read-only --tmpfs /tmp:mode=1777 \
    --memory 1g --memory-reservation 512m --pids-limit 1024 -v "$ws:/mnt/workspace" \
    -e ZOE_WORKSPACE=/mnt/workspace -e ZOE_USER=alice -e ZOE_UID="${user%:*}" -e ZOE_GID="${user#*:}" \
    -e EXECUTION_ID=$exec_id -e DEPLOY_NAME=$deployment -e SERVICE_NAME="$svc" \
    "$@" >/dev/null
}
# As Zoe would have it, the scheduler at {dns_name#scheduler0}.
sched=tcp://$(dns scheduler0):8786
prefix() { echo "/zoe/proxy/$exec_id/$1/$2"; }

step "smoke: starting a scheduler, two workers and a notebook ($tag) as $user"
run scheduler0 -e REVERSE_PROXY_PATH_8786="$(prefix scheduler0 8786)" \
  -e REVERSE_PROXY_PATH_8787="$(prefix scheduler0 8787)" "zoe/dask-scheduler:$tag"
run worker0 -e DASK_SCHEDULER_ADDRESS="$sched" "zoe/dask-worker:$tag"
run worker1 -e DASK_SCHEDULER_ADDRESS="$sched" "zoe/dask-worker:$tag"
# A secret as Zoe makes one (128 bits and more, URL-safe).
token=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
run notebook0 -e DASK_SCHEDULER_ADDRESS="$sched" -e REVERSE_PROXY_PATH_8888="$(prefix notebook0 8888)" \
  -e ZOE_PROXY_TOKEN="$token" "zoe/notebook-dask:$tag"

step "smoke: check.py: a Dask computation in a notebook kernel, Jupyter and the scheduler's pages under their prefixes"
failed=
docker run --name "$p-check" --network "$p" --user "$user" --cap-drop ALL --security-opt no-new-privileges \
  --read-only --tmpfs /tmp:mode=1777 -v "$PWD:/smoke:ro" -e CHECK_AUTH="token $token" "zoe/notebook-dask:$tag" \
  python3 /smoke/check.py "http://$(dns notebook0):8888$(prefix notebook0 8888)" \
  "http://$(dns scheduler0):8787$(prefix scheduler0 8787)" | tee "$ws/.check" || failed=1
if [ -n "$failed" ]; then
  for s in scheduler0 worker0 worker1 notebook0; do echo "--- log of $s"; docker logs --tail 30 "$p-$s" 2>&1; done
  exit 1
fi
expect() { grep -qx "$1" "$ws/.check" || { echo "FAIL: expected the line: $1"; exit 1; }; }
if grep -q "Mismatched versions" "$ws/.check"; then echo "FAIL: client, scheduler and workers differ"; exit 1; fi
expect "sum 4000000.0"
expect "dataframe sum 4950"
expect "cwd /mnt/workspace home /mnt/workspace user alice ${user%:*}"
# Dask reads the workers' memory limit from their cgroup: the smaller of
# the hard limit (Zoe's memory.max) and the soft one (memory.min, on Docker).
expect "worker memory limits \[536870912, 536870912\]"
expect "ok: requests without the token, or with a wrong one, refused"
[ -s "$ws/smoke.png" ] || { echo "FAIL: the notebook's plot is not in the workspace"; exit 1; }
echo "ok: sum, dataframe, workers' memory limits, working directory, HOME, user name, plot in the workspace"
if docker logs "$p-notebook0" 2>&1 | grep -q "$token"; then echo "FAIL: the notebook logged its token"; exit 1; fi
echo "ok: the notebook's log does not show ZOE_PROXY_TOKEN"
# Every user of the host reads processes' command lines (ps).
if docker top "$p-notebook0" | grep -q "$token"; then echo "FAIL: the token is on a command line"; exit 1; fi
echo "ok: no command line of the notebook's shows ZOE_PROXY_TOKEN"

step "smoke: a notebook without NOTEBOOK_TOKEN nor ZOE_PROXY_TOKEN makes a token of its own"
run notebook1 "zoe/notebook-dask:$tag"
i=0
until docker logs "$p-notebook1" 2>&1 | grep -q '?token=[0-9a-f]'; do
  i=$((i + 1))
  [ "$i" -lt 60 ] || { docker logs "$p-notebook1" 2>&1 | tail -20; echo "FAIL: no token of its own in its log"; exit 1; }
  sleep 1
done
status=$(docker exec "$p-notebook1" python3 -c 'import urllib.request, urllib.error
try: print(urllib.request.urlopen("http://127.0.0.1:8888/api/contents", timeout=30).status)
except urllib.error.HTTPError as e: print(e.code)')
[ "$status" = 403 ] || { echo "FAIL: the notebook without a token answered $status without one"; exit 1; }
docker rm -f "$p-notebook1" >/dev/null
echo "ok: it printed its own token and refuses requests without it"

step "smoke: a batch job of zoe/python writes to the workspace, then one is stopped with SIGTERM"
run batch "zoe/python:$tag" python3 -c 'open("batch.txt", "w").write("done\n")'
[ "$(docker wait "$p-batch")" = 0 ] || { docker logs "$p-batch"; echo "FAIL: the batch job failed"; exit 1; }
[ "$(cat "$ws/batch.txt")" = done ] || { echo "FAIL: no batch.txt in the workspace"; exit 1; }
docker rm "$p-batch" >/dev/null
run batch "zoe/python:$tag" python3 -c 'import time; time.sleep(600)'
sleep 2
start=$(date +%s)
docker stop -t 30 "$p-batch" >/dev/null
took=$(( $(date +%s) - start ))
[ "$took" -lt 20 ] || { echo "FAIL: the batch job took ${took}s to stop on SIGTERM"; exit 1; }
echo "ok: batch.txt in the workspace; stopped in ${took}s"

docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "$p-scheduler0" "$p-worker0" "$p-worker1" "$p-notebook0" |
  sed "s/^$p-/memory of /"
# Zoe stops services with SIGTERM, then kills them after a grace period.
for s in notebook0 worker0 worker1 scheduler0; do
  start=$(date +%s)
  docker stop -t 30 "$p-$s" >/dev/null
  took=$(( $(date +%s) - start ))
  [ "$took" -lt 20 ] || { echo "FAIL: $s took ${took}s to stop on SIGTERM"; exit 1; }
  echo "ok: $s stopped on SIGTERM in ${took}s"
done
step "smoke: passed"
