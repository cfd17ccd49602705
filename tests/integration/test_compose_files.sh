#!/usr/bin/env bash
# test_compose_files.sh - the container files agree with the code and with each other, without
# Docker (seconds, for CI): config/prometheus.yml passes `promtool check config` and scrapes
# exactly the ringtail services of docker-compose.yml on their admin port; every
# config/compose/*.yaml passes the right binary's --check-config, the shared ring file parses
# and names each sampler service that runs by default by its host name (= node_id) and service
# name (= endpoint), and the `scale` profile's sampler is not in it yet (it joins when listed);
# the Dockerfile installs setup.sh's build packages in its build stage and every library the
# binaries load in its runtime stage, and ships each program the compose services run.
# When a compose CLI is installed it must also accept docker-compose.yml.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
src=$RT_SOURCE_DIR
compose="$src/docker-compose.yml"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for f in "$compose" "$src/Dockerfile" "$src/.dockerignore" "$src/config/prometheus.yml" \
  "$src/config/compose/ring.yaml" "$src/config/compose/router.yaml" \
  "$src/config/compose/sampler.yaml" "$src/bench/compose-bench.sh"; do
  [ -f "$f" ] || fail "$f missing"
done

# --- docker-compose.yml, read with awk: services, their host names, commands, mounts ---------
# services: the keys indented by two under `services:`.
awk '/^[^ #]/ { in_s = ($0 ~ /^services:/) } in_s && /^  [A-Za-z0-9_-]+:/ {
  sub(/^  /, ""); sub(/:.*/, ""); print }' "$compose" > "$tmp/services"
# "service hostname" for each service that sets one.
awk '/^[^ #]/ { in_s = ($0 ~ /^services:/) } in_s && /^  [A-Za-z0-9_-]+:/ {
  s = $1; sub(/:$/, "", s) } in_s && /^    hostname:/ { print s, $2 }' "$compose" > "$tmp/hostnames"
# "service profile" for each service in a profile (not started by a plain `up`).
awk '/^[^ #]/ { in_s = ($0 ~ /^services:/) } in_s && /^  [A-Za-z0-9_-]+:/ {
  s = $1; sub(/:$/, "", s) } in_s && /^    profiles:/ { gsub(/[][,]/, " "); print s, $2 }' \
  "$compose" > "$tmp/profiles"
grep -qx 'sampler-4 scale' "$tmp/profiles" || fail "docker-compose.yml: no sampler-4 in the scale profile"
for s in router sampler-1 sampler-2 sampler-3 sink loadgen prometheus; do
  grep -qx "$s" "$tmp/services" || fail "docker-compose.yml: no service $s"
done
grep -q '^    profiles: \[prometheus\]' "$compose" || fail "docker-compose.yml: prometheus not in a profile"
grep -q -- '- ./config/compose:/etc/ringtail' "$compose" || fail "docker-compose.yml: config/compose not mounted"
grep -q -- '- ./config/prometheus.yml:/etc/prometheus/prometheus.yml' "$compose" ||
  fail "docker-compose.yml: config/prometheus.yml not mounted"
# Every config a command names is in config/compose/.
grep -o '/etc/ringtail/[A-Za-z0-9_.-]*' "$compose" | sort -u | while read -r p; do
  [ -f "$src/config/compose/${p#/etc/ringtail/}" ] || fail "docker-compose.yml names $p: not in config/compose/"
done

# --- the Dockerfile ---------------------------------------------------------------------------
# apt_pkgs STAGE: the packages `apt-get install` installs in build stage STAGE (FROM ... AS
# STAGE; "final" for the unnamed last one), continuation lines joined.
apt_pkgs() {
  awk -v want="$1" '
    /^FROM / { stage = (NF >= 4 && toupper($3) == "AS") ? $4 : "final" }
    { line = line $0 }
    /\\$/ { sub(/\\$/, "", line); next }
    { if (stage == want && line ~ /apt-get install/) {
        sub(/.*apt-get install/, "", line); sub(/&&.*/, "", line)
        n = split(line, w, /[ \t]+/)
        for (i = 1; i <= n; i++) if (w[i] != "" && w[i] !~ /^-/) print w[i]
      }
      line = "" }' "$src/Dockerfile" | sort -u
}
apt_pkgs build > "$tmp/docker-build"
apt_pkgs final > "$tmp/docker-runtime"
[ -s "$tmp/docker-build" ] || fail "Dockerfile: no build stage packages found"
[ -s "$tmp/docker-runtime" ] || fail "Dockerfile: no runtime stage packages found"
awk '/^PKGS=\(/ { on = 1; next } on && /^\)/ { on = 0 } on { sub(/#.*/, ""); for (i = 1; i <= NF; i++) print $i }' \
  "$src/scripts/setup.sh" | sort -u > "$tmp/setup"
[ -s "$tmp/setup" ] || fail "scripts/setup.sh: no PKGS list found"
# The build stage installs exactly setup.sh's compilers, build tools and -dev packages.
grep -E -- '-dev$|^(build-essential|cmake|pkg-config|protobuf-c-compiler)$' "$tmp/setup" > "$tmp/setup-build"
diff "$tmp/setup-build" "$tmp/docker-build" > "$tmp/diff" ||
  fail "Dockerfile build stage vs scripts/setup.sh build packages (< setup.sh, > Dockerfile): $(cat "$tmp/diff")"
# The runtime stage has the package of every shared library the binaries load (libc6 and the
# sanitizer runtimes of an RT_SANITIZE build aside).
have_dpkg=0
command -v dpkg > /dev/null && command -v ldd > /dev/null && have_dpkg=1
if [ "$have_dpkg" = 1 ]; then
  for b in ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink; do
    [ -x "$RT_BUILD_DIR/$b" ] || fail "$RT_BUILD_DIR/$b missing (build it first)"
    ldd "$RT_BUILD_DIR/$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
  done | sort -u | while read -r lib; do
    real=$(readlink -f "$lib")
    # usrmerge: dpkg may know the file under /lib rather than /usr/lib.
    pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$lib" 2>/dev/null ||
      dpkg -S "${lib#/usr}" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] || fail "no Debian package owns $lib (needed by the binaries)"
    case "$pkg" in libc6 | libasan* | libubsan* | libgcc-s1 | libstdc++6) continue ;; esac
    grep -qx "$pkg" "$tmp/docker-runtime" ||
      fail "Dockerfile runtime stage lacks $pkg (for $lib, which the binaries load)"
  done
else
  echo "skip: no dpkg/ldd, runtime libraries not checked"
fi
# The runtime stage ships each program the compose services run, and what it copies exists.
for prog in ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink; do
  grep -q "/src/build/$prog" "$src/Dockerfile" || fail "Dockerfile does not ship $prog"
done
grep -q '^COPY bench/compose-bench.sh /usr/local/bin/rt-compose-bench$' "$src/Dockerfile" ||
  fail "Dockerfile does not install bench/compose-bench.sh as rt-compose-bench"
grep -o 'command: \["[a-z-]*"' "$compose" | sed 's/.*\["//; s/"$//' | sort -u | while read -r prog; do
  case "$prog" in
  ringtail-router | ringtail-sampler | rt-bench-loadgen | rt-bench-sink | rt-compose-bench) ;;
  *) fail "docker-compose.yml runs $prog, which the image does not ship" ;;
  esac
done
grep -q '^USER ringtail$' "$src/Dockerfile" || fail "Dockerfile: the runtime stage does not drop root"
[ "$(grep -c '^FROM debian:12' "$src/Dockerfile")" = "$(grep -c '^FROM ' "$src/Dockerfile")" ] ||
  fail "Dockerfile: every stage must start from Debian 12"

# --- config/compose/*.yaml pass --check-config (paths moved from /etc/ringtail to a copy) ----
mkdir -p "$tmp/etc"
for f in "$src"/config/compose/*; do
  sed "s|/etc/ringtail/|$tmp/etc/|g" "$f" > "$tmp/etc/$(basename "$f")"
done
for f in "$src"/config/compose/*; do
  name=$(basename "$f")
  case "$name" in
  ring.yaml) ;; # checked through the router and the samplers below
  router*.yaml)
    "$RT_BUILD_DIR/ringtail-router" --config "$tmp/etc/$name" --check-config > /dev/null ||
      fail "config/compose/$name: ringtail-router --check-config"
    ;;
  sampler*.yaml)
    "$RT_BUILD_DIR/ringtail-sampler" --config "$tmp/etc/$name" --check-config > /dev/null ||
      fail "config/compose/$name: ringtail-sampler --check-config"
    # The shared config leaves node_id to the host name (each service's own); the ring's ids
    # are checked against the services below.
    ! grep -q '^node_id:' "$tmp/etc/$name" || fail "config/compose/$name sets node_id: every sampler would have it"
    ;;
  *) fail "config/compose/$name: not a ring, router or sampler config (extend this test)" ;;
  esac
done
# A ring file the binaries refuse fails the check (the check above can fail).
printf 'protocol: http\nnodes:\n  - {id: a, endpoint: "a:4318"}\n  - {id: a, endpoint: "b:4318"}\n' \
  > "$tmp/etc/ring.yaml"
if "$RT_BUILD_DIR/ringtail-router" --config "$tmp/etc/router.yaml" --check-config > /dev/null 2>&1; then
  fail "a bad ring file passed the router's --check-config"
fi
# The ring's nodes are the sampler services a plain `up` starts: id = host name, endpoint =
# service:4318.
awk '/^ *- id:/ { id = $3 } /^ *endpoint:/ { print id, $2 }' "$src/config/compose/ring.yaml" \
  | sort > "$tmp/ring-nodes"
awk 'NR == FNR { prof[$1] = 1; next } $1 ~ /^sampler/ && !($1 in prof) { print $2, $1 ":4318" }' \
  "$tmp/profiles" "$tmp/hostnames" | sort > "$tmp/sampler-nodes"
[ "$(wc -l < "$tmp/ring-nodes")" = 3 ] || fail "config/compose/ring.yaml: want 3 nodes"
diff "$tmp/ring-nodes" "$tmp/sampler-nodes" > "$tmp/diff" ||
  fail "ring nodes (<) vs sampler services (>): $(cat "$tmp/diff")"

# --- config/prometheus.yml ----------------------------------------------------------------
promtool check config "$src/config/prometheus.yml" > "$tmp/promtool.out" 2>&1 ||
  { cat "$tmp/promtool.out" >&2; fail "promtool check config config/prometheus.yml"; }
grep -o '"[A-Za-z0-9_.-]*:[0-9]*"' "$src/config/prometheus.yml" | tr -d '"' | sort -u > "$tmp/targets"
[ -s "$tmp/targets" ] || fail "config/prometheus.yml: no targets"
admin_port() { awk '/^admin:/ { a = 1; next } a && /listen:/ { sub(/.*:/, "", $2); print $2; exit }' "$1"; }
rport=$(admin_port "$src/config/compose/router.yaml")
sport=$(admin_port "$src/config/compose/sampler.yaml")
while IFS=: read -r host port; do
  grep -qx "$host" "$tmp/services" || fail "prometheus.yml scrapes $host, not a compose service"
  case "$host" in
  router) [ "$port" = "$rport" ] || fail "prometheus.yml: router:$port, its admin port is $rport" ;;
  sampler*) [ "$port" = "$sport" ] || fail "prometheus.yml: $host:$port, its admin port is $sport" ;;
  *) fail "prometheus.yml scrapes $host, which has no /metrics" ;;
  esac
done < "$tmp/targets"
# ... and every ringtail process is scraped.
grep -E '^(router|sampler)' "$tmp/services" | while read -r s; do
  grep -q "^$s:" "$tmp/targets" || fail "prometheus.yml does not scrape $s"
done

# --- a compose CLI, when there is one ------------------------------------------------------
if docker compose version > /dev/null 2>&1; then
  (cd "$src" && docker compose --profile prometheus config -q) || fail "docker compose config"
  echo "ok: docker compose config"
elif command -v docker-compose > /dev/null 2>&1; then
  (cd "$src" && docker-compose --profile prometheus config -q) || fail "docker-compose config"
  echo "ok: docker-compose config"
else
  echo "skip: no compose CLI; docker-compose.yml checked with awk only"
fi
echo "ok: compose files, Dockerfile, compose configs and prometheus.yml agree"
