# Dockerfile - one image with ringtail-router, ringtail-sampler and the benchmark tools
# (rt-bench-loadgen, rt-bench-sink, rt-compose-bench), built from Debian 12's packages only.
#
#   docker build -t ringtail .                     # the runtime image (the last stage)
#   docker run --rm ringtail ringtail-sampler --help-config
#
# Stages: `build` compiles with the -dev packages (the cmake commands of scripts/test.sh:
# RelWithDebInfo, warnings are errors; then stripped); `prometheus` is Debian's Prometheus for
# docker-compose.yml's `prometheus` profile; the last stage holds only the runtime libraries
# and runs as the unprivileged user `ringtail`. tests/integration/test_compose_files.sh keeps
# the package lists in step: the build stage's are scripts/setup.sh's build packages, and the
# runtime stage has every library the binaries load.

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libevent-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libyaml-dev \
      libmurmurhash-dev libnghttp2-dev zlib1g-dev libjansson-dev libcmocka-dev \
      libisal-dev libdeflate-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the four programs the image ships; the test suite is CI's job (scripts/test.sh).
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j"$(nproc)" \
      --target ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink \
 && strip build/ringtail-router build/ringtail-sampler build/rt-bench-loadgen build/rt-bench-sink

# Prometheus for the compose profile `prometheus`, from Debian like everything else here.
FROM debian:12-slim AS prometheus
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

FROM debian:12-slim
# Runtime libraries only (what ldd names), plus curl and jq for health checks and the
# benchmark's report, and CA certificates for TLS exporters.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-core-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 \
      libprotobuf-c1 libssl3 libyaml-0-2 libmurmurhash2 libnghttp2-14 libisal2 libjansson4 \
      ca-certificates curl jq \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/ringtail --create-home \
      --shell /usr/sbin/nologin ringtail \
 && mkdir -p /bench && chown ringtail:ringtail /bench
COPY --from=build /src/build/ringtail-router /src/build/ringtail-sampler \
     /src/build/rt-bench-loadgen /src/build/rt-bench-sink /usr/local/bin/
COPY bench/compose-bench.sh /usr/local/bin/rt-compose-bench
# Default configs: the compose topology's (docker-compose.yml mounts config/compose over them).
COPY config/compose/ /etc/ringtail/
# Fail the build, not the first run, if a library is missing or the shipped configs are bad.
RUN for b in ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink; do \
      if ldd "/usr/local/bin/$b" | grep 'not found'; then echo "$b: missing library" >&2; exit 1; fi; \
    done \
 && ringtail-router --check-config && ringtail-sampler --check-config
USER ringtail
WORKDIR /var/lib/ringtail
# OTLP/gRPC, OTLP/HTTP, admin (/metrics, /healthz, /readyz, /ring).
EXPOSE 4317 4318 8888
# Both daemons handle SIGTERM themselves (the sampler decides what it holds and flushes), so
# they run as PID 1 without a wrapper. Pick the program with the command:
#   docker run ringtail ringtail-sampler --config /etc/ringtail/sampler.yaml
CMD ["ringtail-router", "--config", "/etc/ringtail/router.yaml"]
