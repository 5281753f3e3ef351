# relayd container: a build stage with the compilers and -dev packages, and
# a runtime stage with only the shared libraries, mirroring the README's
# install steps (etc/install-deps build / runtime).
#
#   docker build -t relayd .
#   docker run -v relayd-spool:/var/spool/relayd -v /srv/relayd:/etc/relayd \
#       -p 25:25 -p 465:465 -p 587:587 relayd
#
# /etc/relayd holds relayd.conf, the users file, the secret, the TLS
# certificate and the DKIM keys; /var/spool/relayd the queue.  Binding
# ports below 1024 as the non-root user needs the capability that the
# runtime adds by default (NET_BIND_SERVICE) or higher ports in relayd.conf.

FROM debian:12 AS build
COPY etc/install-deps /src/etc/install-deps
RUN /src/etc/install-deps build && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN rm -rf build-docker \
    && meson setup build-docker --prefix=/usr/local --buildtype=release \
    && ninja -C build-docker \
    && meson install -C build-docker --destdir /out

FROM debian:12
COPY etc/install-deps /usr/local/sbin/relayd-install-deps
RUN /usr/local/sbin/relayd-install-deps runtime && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/spool/relayd --shell /usr/sbin/nologin relayd \
    && mkdir -p /var/spool/relayd /etc/relayd /run/relayd \
    && chown relayd:relayd /var/spool/relayd /run/relayd
COPY --from=build /out/usr/local/ /usr/local/
VOLUME ["/var/spool/relayd", "/etc/relayd"]
EXPOSE 25 465 587
USER relayd
CMD ["relayd", "-c", "/etc/relayd/relayd.conf"]
