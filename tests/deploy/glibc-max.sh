#!/usr/bin/env bash
# glibc-max.sh LIB [MAX]: fails unless the shared library LIB needs no glibc symbol version newer than MAX.
# MAX defaults to 2.35, the glibc of Ubuntu 22.04, the base of nvcr.io/nvidia/tritonserver:24.10-py3 (Triton
# 2.51.0): the server's build.py at tag v2.51.0 builds that image on ubuntu:22.04, and Ubuntu 22.04 (jammy)
# ships glibc 2.35. Newer containers (25.xx on Ubuntu 24.04, glibc 2.39) accept anything this accepts.
set -euo pipefail
lib=${1:?usage: glibc-max.sh LIB [MAX]}
max=${2:-2.35}
[ -f "$lib" ] || { echo "glibc-max: $lib: no such file" >&2; exit 2; }
# Every GLIBC_x.y version the library references (objdump -T: the dynamic symbol table with versions).
versions=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV)
[ -n "$versions" ] || { echo "glibc-max: $lib references no GLIBC_ symbol version (not a glibc-linked library?)" >&2; exit 1; }
need=$(tail -n1 <<<"$versions")
if [ "$(printf '%s\n%s\n' "$need" "$max" | sort -V | tail -n1)" != "$max" ]; then
  echo "glibc-max: $lib needs GLIBC_$need, newer than GLIBC_$max (the image's glibc); symbols:" >&2
  objdump -T "$lib" | grep "GLIBC_$need" | awk '{print "  " $NF}' >&2
  exit 1
fi
echo "glibc-max: $(basename "$lib") needs GLIBC_$need <= GLIBC_$max"
